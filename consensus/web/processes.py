"""Processes and rounds: the list, the process page, the round page, facilitation."""

from __future__ import annotations

from typing import NamedTuple

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from consensus import permissions
from consensus.domain.timeutil import from_local_input, local_day, to_local_input
from consensus.extensions import db
from consensus.forms import EmptyForm, choices
from consensus.forms.processes import (
    ROUND_TYPE_LABELS,
    RULE_HINTS,
    RULE_LABELS,
    ActForm,
    ExtendForm,
    FacilitatorForm,
    ParticipantForm,
    ProcessForm,
    PublishForm,
    RemoveParticipantForm,
    RoundForm,
    WithdrawForm,
)
from consensus.models import (
    DecisionRule,
    Organisation,
    Participation,
    Process,
    ProcessState,
    ProcessTheme,
    Round,
    RoundType,
    User,
    Version,
    utcnow,
)
from consensus.permissions import Action
from consensus.services import processes as service
from consensus.web.loaders import load_process
from consensus.web.pages import bodies as bodies_page
from consensus.web.pages import process as process_page
from consensus.web.usecase import run
from consensus.web.utils import too_late

bp = Blueprint("processes", __name__, url_prefix="/processes")

# Processes a page of the list shows (the rest is a page further).
PAGE_SIZE = 50


@bp.context_processor
def labels() -> dict[str, object]:
    from consensus.web.labels import PROCESS_STATE_LABELS, ROUND_STATE_LABELS

    return {
        "rule_labels": RULE_LABELS,
        "rule_hints": RULE_HINTS,
        "round_type_labels": ROUND_TYPE_LABELS,
        "state_labels": PROCESS_STATE_LABELS,
        "round_state_labels": ROUND_STATE_LABELS,
        "Action": Action,
    }


def load_round(process: Process, round_id: int) -> Round:
    round_ = next((r for r in process.rounds if r.id == round_id), None)
    if round_ is None:
        abort(404)
    return round_


def require_manage(process: Process) -> None:
    permissions.require(permissions.can_manage_process(current_user, process))


# --- List and create --------------------------------------------------------------------------


@bp.get("/")
@login_required
def index() -> str:
    theme = request.args.get("theme", "").strip()[:60]
    state = request.args.get("state", "")
    mine = request.args.get("mine") == "1"
    statement = select(Process).order_by(Process.created_at.desc(), Process.id.desc())
    if state in {s.value for s in ProcessState}:
        statement = statement.where(Process.state == ProcessState(state))
    if theme:
        statement = statement.where(
            Process.id.in_(select(ProcessTheme.process_id).where(ProcessTheme.name == theme))
        )
    my_orgs = [m.organisation_id for m in permissions.valid_memberships(current_user)]
    if mine:
        statement = statement.where(
            Process.id.in_(
                select(Participation.process_id).where(
                    Participation.organisation_id.in_(my_orgs or [0]),
                    Participation.removed_at.is_(None),
                )
            )
        )
    # The rule book's SQL form of can_view_process: the database filters and cuts the page
    # (it was every process loaded and checked here).
    viewable = permissions.viewable_clause(current_user)
    page = db.paginate(
        statement.where(viewable).options(selectinload(Process.themes)),
        per_page=PAGE_SIZE,
        error_out=False,
    )
    themes = list(
        db.session.execute(
            select(ProcessTheme.name)
            .join(Process, Process.id == ProcessTheme.process_id)
            .where(viewable)
            .distinct()
            .order_by(ProcessTheme.name)
        ).scalars()
    )
    filters = {"theme": theme, "state": state, "mine": "1" if mine else ""}
    return render_template(
        "processes/index.html",
        processes=page.items,
        page=page,
        filters={k: v for k, v in filters.items() if v},
        theme=theme,
        state=state,
        mine=mine,
        themes=themes,
        now=utcnow(),
        can_create=permissions.can_create_process(current_user),
    )


def _rule_from(form: ProcessForm) -> dict[str, object]:
    return {
        "title": form.title.data or "",
        "purpose": form.purpose.data or "",
        "themes": service.parse_themes(form.themes.data or ""),
        "decision_rule": DecisionRule(form.decision_rule.data),
        "quorum": form.quorum.data or 0,
        "qualified_share_percent": form.qualified_share_percent.data,
        "hide_tally_until_closed": form.hide_tally_until_closed.data,
        "require_clearance": form.require_clearance.data,
    }


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new() -> str | Response:
    permissions.require(permissions.can_create_process(current_user))
    form = ProcessForm()
    if form.validate_on_submit():
        done = run(
            service.create_process,
            actor=current_user,
            form=form,
            success=_("The process has been created. Invite organisations and plan the rounds."),
            **_rule_from(form),
        )
        if done:
            return redirect(url_for("processes.manage", slug=done.value.slug))
    return render_template("processes/form.html", form=form, process=None)


# --- The process page -------------------------------------------------------------------------


@bp.get("/<slug>")
@login_required
def show(slug: str) -> str:
    process = load_process(slug)
    current = process.open_round()
    can_manage = permissions.can_manage_process(current_user, process)
    act_form = None
    if current is not None and current.is_open_at(utcnow()):
        act_form = _act_form(process, Action.MARK_INPUT_COMPLETE, current)

    def render_act_form() -> str:
        if act_form is None or current is None:
            return ""
        return render_template(
            "processes/_act_form.html", process=process, round=current, act_form=act_form
        )

    def render_primary_action() -> str:
        action = primary_action(process, current, can_manage)
        return render_template("processes/_primary_action.html", action=action)

    body_html = process_page.body(
        process,
        current,
        can_manage=can_manage,
        act_form=render_act_form,
        primary_action=render_primary_action,
    )
    follow_up_html = bodies_page.process_follow_up(
        process,
        can_follow=permissions.can_follow_up_process(current_user, process),
        today=local_day(utcnow()),
    )
    return render_template(
        "processes/show.html", process=process, body_html=body_html, follow_up_html=follow_up_html
    )


ROUND_ACTIONS: dict[RoundType, Action] = {
    RoundType.DRAFTING: Action.COMMENT,
    RoundType.CONSULTATION: Action.COMMENT,
    RoundType.CLEARANCE: Action.CLEAR,
    RoundType.ENDORSEMENT: Action.ENDORSE,
    RoundType.SIGNING: Action.SIGN,
}


@bp.app_template_global()
def round_action(
    process: Process, round_: Round, version: Version | VersionPlace | None = None
) -> tuple[str, str]:
    """The one thing a participant does in an open round of this kind, and where: the form
    itself, never an overview one click away from it. (label, url). Without `version` (the
    dashboard, which reads no versions) a drafting or consultation round's text is reached
    through `round_text`, a redirect to the version the round is about."""
    if round_.type == RoundType.ENDORSEMENT:
        url = url_for("endorsements.endorsement", slug=process.slug, round_id=round_.id)
        return _("Decide our stance"), f"{url}#your-stance"
    if round_.type == RoundType.CLEARANCE:
        url = url_for("endorsements.clearance", slug=process.slug, round_id=round_.id)
        return _("Give our official clearance"), f"{url}#your-clearance"
    if round_.type == RoundType.SIGNING:
        return _("Sign on behalf of your organisation"), url_for(
            "signing.round_page", slug=process.slug
        )
    if version is not None:
        url = url_for(
            "positions.version",
            slug=process.slug,
            position_id=version.position_id,
            number=version.number,
        )
        return _("Read and respond to version %(n)d", n=version.number), url
    return _("Read the text and respond"), url_for(
        "processes.round_text", slug=process.slug, round_id=round_.id
    )


class VersionPlace(NamedTuple):
    """Where a version is (its position and number), without its text or paragraphs."""

    position_id: int
    number: int


def _version_place(version_id: int | None) -> VersionPlace | None:
    if version_id is None:
        return None
    row = db.session.execute(
        select(Version.position_id, Version.number).where(Version.id == version_id)
    ).one_or_none()
    return VersionPlace(row.position_id, row.number) if row else None


def primary_action(
    process: Process, round_: Round | None, can_manage: bool
) -> tuple[str, str] | None:
    """This viewer's one primary action for the current round: act (when they may, for
    some organisation), else manage it (facilitators), else nothing."""
    if round_ is None or not round_.is_open_at(utcnow()):
        return None
    action = ROUND_ACTIONS[round_.type]

    def may(organisation: Organisation) -> bool:
        if action == Action.SIGN:  # only organisations whose endorsement counted sign
            return bool(permissions.may_sign(current_user, process, round_, organisation))
        return bool(permissions.gate(current_user, action, process, organisation, round_=round_))

    if any(may(o) for o in permissions.acting_organisations(current_user, process, action)):
        if round_.type not in {RoundType.DRAFTING, RoundType.CONSULTATION}:
            return round_action(process, round_)
        return round_action(process, round_, _version_place(round_.version_id))
    if can_manage:
        return _("Manage this round"), url_for(
            "processes.round_page", slug=process.slug, round_id=round_.id
        )
    return None


def status_html(process: Process, round_: Round) -> Markup:
    """Who has acted in a round: the same for every viewer (consensus/web/pages/process.py)."""
    return process_page.round_status(process, round_)


def _act_form(process: Process, action: Action, round_: Round) -> ActForm | None:
    """The organisations this person may act for right now; None when there are none."""
    organisations = [
        o
        for o in permissions.acting_organisations(current_user, process, action)
        if permissions.gate(current_user, action, process, o, round_=round_)
    ]
    if not organisations:
        return None
    form = ActForm()
    form.organisation_id.choices = choices((o.id, o.name) for o in organisations)
    return form


@bp.get("/<slug>/rounds/<int:round_id>")
@login_required
def round_page(slug: str, round_id: int) -> str:
    process = load_process(slug)
    round_ = load_round(process, round_id)
    now = utcnow()
    act_form = (
        _act_form(process, Action.MARK_INPUT_COMPLETE, round_)
        if round_.type in {RoundType.DRAFTING, RoundType.CONSULTATION}
        else None
    )
    return render_template(
        "processes/round.html",
        process=process,
        round=round_,
        status_html=status_html(process, round_),
        now=now,
        can_manage=permissions.can_manage_process(current_user, process),
        act_form=act_form,
        remind_form=EmptyForm(),
        action_form=EmptyForm(),
    )


@bp.get("/<slug>/rounds/<int:round_id>/text")
@login_required
def round_text(slug: str, round_id: int) -> Response:
    """The text a drafting or consultation round is about (the dashboard's "respond" link),
    or the round page when it has none yet."""
    process = load_process(slug)
    round_ = load_round(process, round_id)
    version = db.session.get(Version, round_.version_id) if round_.version_id else None
    if version is None:
        return redirect(url_for("processes.round_page", slug=slug, round_id=round_id))
    return redirect(
        url_for(
            "positions.version",
            slug=slug,
            position_id=version.position_id,
            number=version.number,
        )
    )


@bp.post("/<slug>/rounds/<int:round_id>/complete")
@login_required
def mark_complete(slug: str, round_id: int) -> Response | tuple[str, int]:
    """An organisation says its input is complete; the gate decides, here and only here."""
    process = load_process(slug)
    round_ = load_round(process, round_id)
    organisation_id = request.form.get("organisation_id", type=int)
    organisation = db.session.get(Organisation, organisation_id) if organisation_id else None
    decision = permissions.gate(
        current_user, Action.MARK_INPUT_COMPLETE, process, organisation, round_=round_
    )
    if not decision:
        late = too_late(round_, _("Your input was not marked complete."))
        flash(late or decision.reason, "error")
        if late:
            return round_page(slug, round_id), 409
        return redirect(url_for("processes.round_page", slug=slug, round_id=round_id))
    assert organisation is not None
    run(
        service.mark_input_complete,
        round_,
        actor=current_user,
        organisation=organisation,
        success=_("Recorded: the input of %(org)s is complete.", org=organisation.name),
    )
    return redirect(url_for("processes.round_page", slug=slug, round_id=round_id))


# --- Facilitation -----------------------------------------------------------------------------


def _participant_form(process: Process) -> ParticipantForm:
    form = ParticipantForm(prefix="p")
    taken = process.participant_ids
    form.organisation_id.choices = choices(
        [(0, _("Choose an organisation"))]
        + [
            (o.id, o.name)
            for o in db.session.execute(
                select(Organisation)
                .where(Organisation.active.is_(True))
                .order_by(Organisation.name)
            ).scalars()
            if o.id not in taken
        ]
    )
    return form


def _facilitator_form(process: Process) -> FacilitatorForm:
    form = FacilitatorForm(prefix="f")
    taken = process.facilitator_ids
    form.user_id.choices = choices(
        [(0, _("Choose a person"))]
        + [
            (u.id, u.display_name)
            for u in db.session.execute(
                select(User)
                .where(User.is_facilitator.is_(True), User.active.is_(True))
                .order_by(User.display_name)
            ).scalars()
            if u.id not in taken
        ]
    )
    return form


def _manage_page(process: Process, status: int = 200, **forms: object) -> tuple[str, int]:
    context = {
        "participant_form": _participant_form(process),
        "facilitator_form": _facilitator_form(process),
        "remove_form": RemoveParticipantForm(prefix="r"),
        "withdraw_form": WithdrawForm(prefix="w"),
        "publish_form": PublishForm(prefix="pub"),
        "action_form": EmptyForm(),
    }
    context.update(forms)
    return render_template(
        "processes/manage.html", process=process, now=utcnow(), **context
    ), status


@bp.get("/<slug>/manage")
@login_required
def manage(slug: str) -> tuple[str, int]:
    process = load_process(slug)
    require_manage(process)
    return _manage_page(process)


@bp.route("/<slug>/edit", methods=["GET", "POST"])
@login_required
def edit(slug: str) -> str | Response:
    process = load_process(slug)
    require_manage(process)
    form = ProcessForm(obj=process)
    if request.method == "GET":
        form.themes.data = ", ".join(t.name for t in process.themes)
        form.decision_rule.data = process.decision_rule.value
    if form.validate_on_submit() and run(
        service.update_process,
        process,
        actor=current_user,
        form=form,
        success=_("The changes have been saved."),
        **_rule_from(form),
    ):
        return redirect(url_for("processes.manage", slug=slug))
    return render_template("processes/form.html", form=form, process=process)


@bp.post("/<slug>/participants")
@login_required
def add_participant(slug: str) -> str | Response | tuple[str, int]:
    process = load_process(slug)
    require_manage(process)
    form = _participant_form(process)
    if form.validate_on_submit():
        organisation = db.session.get(Organisation, form.organisation_id.data)
        if organisation is None:
            abort(400)
        if run(
            service.add_participant,
            process,
            actor=current_user,
            organisation=organisation,
            reason=form.reason.data or "",
            form=form,
            success=_("%(org)s has been invited.", org=organisation.name),
        ):
            return redirect(url_for("processes.manage", slug=slug))
    return _manage_page(process, 400, participant_form=form)


@bp.post("/<slug>/participants/<int:organisation_id>/remove")
@login_required
def remove_participant(slug: str, organisation_id: int) -> str | Response | tuple[str, int]:
    process = load_process(slug)
    require_manage(process)
    organisation = db.session.get(Organisation, organisation_id)
    if organisation is None:
        abort(404)
    form = RemoveParticipantForm(prefix="r")
    if form.validate_on_submit() and run(
        service.remove_participant,
        process,
        actor=current_user,
        organisation=organisation,
        reason=form.reason.data or "",
        form=form,
        success=_("%(org)s no longer takes part.", org=organisation.name),
    ):
        return redirect(url_for("processes.manage", slug=slug))
    return _manage_page(process, 400, remove_form=form)


@bp.post("/<slug>/facilitators")
@login_required
def add_facilitator(slug: str) -> str | Response | tuple[str, int]:
    process = load_process(slug)
    require_manage(process)
    form = _facilitator_form(process)
    if form.validate_on_submit():
        user = db.session.get(User, form.user_id.data)
        if user is None:
            abort(400)
        if run(
            service.add_facilitator,
            process,
            actor=current_user,
            user=user,
            form=form,
            success=_("%(name)s now facilitates this process.", name=user.display_name),
        ):
            return redirect(url_for("processes.manage", slug=slug))
    return _manage_page(process, 400, facilitator_form=form)


@bp.post("/<slug>/<any(activate, conclude):transition>")
@login_required
def transition(slug: str, transition: str) -> Response:
    process = load_process(slug)
    require_manage(process)
    if not EmptyForm().validate_on_submit():
        abort(400)
    if transition == "activate":
        run(
            service.activate_process,
            process,
            actor=current_user,
            success=_("The process has started."),
        )
    else:
        run(
            service.conclude_process,
            process,
            actor=current_user,
            success=_("The process has been concluded."),
        )
    return redirect(url_for("processes.manage", slug=slug))


@bp.post("/<slug>/withdraw")
@login_required
def withdraw(slug: str) -> str | Response | tuple[str, int]:
    process = load_process(slug)
    require_manage(process)
    form = WithdrawForm(prefix="w")
    if form.validate_on_submit() and run(
        service.withdraw_process,
        process,
        actor=current_user,
        reason=form.reason.data or "",
        form=form,
        success=_("The process has been withdrawn."),
    ):
        return redirect(url_for("processes.show", slug=slug))
    return _manage_page(process, 400, withdraw_form=form)


@bp.post("/<slug>/publish")
@login_required
def publish(slug: str) -> str | Response | tuple[str, int]:
    process = load_process(slug)
    permissions.require(permissions.is_facilitator_of(current_user, process))
    form = PublishForm(prefix="pub")
    if form.validate_on_submit():
        at = from_local_input(form.publish_at.data) if form.publish_at.data else None
        if run(
            service.schedule_publication,
            process,
            actor=current_user,
            at=at,
            form=form,
            success=_("The process is published.")
            if at is None
            else _("Publication has been scheduled."),
        ):
            return redirect(url_for("processes.manage", slug=slug))
    return _manage_page(process, 400, publish_form=form)


# --- Rounds (facilitator) ---------------------------------------------------------------------


@bp.route("/<slug>/rounds/new", methods=["GET", "POST"])
@login_required
def round_new(slug: str) -> str | Response:
    process = load_process(slug)
    require_manage(process)
    form = RoundForm()
    if form.validate_on_submit() and run(
        service.add_round,
        process,
        actor=current_user,
        type=RoundType(form.type.data),
        title=form.title.data or "",
        instructions=form.instructions.data or "",
        opens_at=from_local_input(form.opens_at.data),
        closes_at=from_local_input(form.closes_at.data),
        form=form,
        success=lambda round_: _(
            "Round \u201c%(title)s\u201d has been planned.", title=round_.title
        ),
    ):
        return redirect(url_for("processes.manage", slug=slug))
    return render_template("processes/round_form.html", form=form, process=process, round=None)


@bp.route("/<slug>/rounds/<int:round_id>/edit", methods=["GET", "POST"])
@login_required
def round_edit(slug: str, round_id: int) -> str | Response:
    process = load_process(slug)
    require_manage(process)
    round_ = load_round(process, round_id)
    form = RoundForm(obj=round_)
    if request.method == "GET":
        form.type.data = round_.type.value
        form.opens_at.data = to_local_input(round_.opens_at)
        form.closes_at.data = to_local_input(round_.closes_at)
    if form.validate_on_submit() and run(
        service.update_round,
        round_,
        actor=current_user,
        title=form.title.data or "",
        instructions=form.instructions.data or "",
        opens_at=from_local_input(form.opens_at.data),
        closes_at=from_local_input(form.closes_at.data),
        form=form,
        success=_("The changes have been saved."),
    ):
        return redirect(url_for("processes.manage", slug=slug))
    return render_template(
        "processes/round_form.html",
        form=form,
        process=process,
        round=round_,
        extend_form=ExtendForm(prefix="x"),
    )


@bp.post("/<slug>/rounds/<int:round_id>/<any(open, close):transition>")
@login_required
def round_transition(slug: str, round_id: int, transition: str) -> Response:
    process = load_process(slug)
    require_manage(process)
    round_ = load_round(process, round_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    if transition == "open":
        run(service.open_round, round_, actor=current_user, success=_("The round is open."))
    else:
        run(service.close_round, round_, actor=current_user, success=_("The round is closed."))
    return redirect(
        request.form.get("back") == "round"
        and url_for("processes.round_page", slug=slug, round_id=round_id)
        or url_for("processes.manage", slug=slug)
    )


@bp.post("/<slug>/rounds/<int:round_id>/extend")
@login_required
def round_extend(slug: str, round_id: int) -> str | Response:
    process = load_process(slug)
    require_manage(process)
    round_ = load_round(process, round_id)
    form = ExtendForm(prefix="x")
    if form.validate_on_submit() and run(
        service.extend_deadline,
        round_,
        actor=current_user,
        closes_at=from_local_input(form.closes_at.data),
        reason=form.reason.data or "",
        form=form,
        success=_("The deadline has been extended."),
    ):
        return redirect(url_for("processes.round_page", slug=slug, round_id=round_id))
    round_form = RoundForm(obj=round_, formdata=None)
    round_form.type.data = round_.type.value
    round_form.opens_at.data = to_local_input(round_.opens_at)
    round_form.closes_at.data = to_local_input(round_.closes_at)
    return render_template(
        "processes/round_form.html",
        form=round_form,
        process=process,
        round=round_,
        extend_form=form,
    ), 400  # type: ignore[return-value]


@bp.post("/<slug>/rounds/<int:round_id>/remind")
@login_required
def round_remind(slug: str, round_id: int) -> Response:
    process = load_process(slug)
    require_manage(process)
    round_ = load_round(process, round_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    run(
        service.send_reminder,
        process,
        round_,
        actor=current_user,
        success=lambda count: ngettext(
            "A reminder has been sent to %(num)d person.",
            "A reminder has been sent to %(num)d people.",
            count,
        ),
    )
    return redirect(url_for("processes.round_page", slug=slug, round_id=round_id))
