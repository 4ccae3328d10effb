"""Endorsement and clearance rounds, outcome statements, and delegation of the mandate.

Views load → ask the gate → call the service → commit → render. The organisation a person
acts for always comes from a form and is always checked again by the gate, so posting
another organisation's id gets nowhere.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload, lazyload
from werkzeug.wrappers import Response

from consensus import permissions
from consensus.domain import decision_rules
from consensus.domain.decision_rules import Reason, Rule
from consensus.domain.timeutil import from_local_input, to_local_input
from consensus.extensions import db, htmx
from consensus.formats.cldr import format_day
from consensus.forms import EmptyForm, choices
from consensus.forms.endorsements import (
    ClearanceForm,
    DelegationForm,
    OutcomeStatementForm,
    StanceForm,
)
from consensus.forms.processes import ROUND_TYPE_LABELS, RULE_LABELS
from consensus.models import (
    ClearanceDecision,
    Delegation,
    Membership,
    Organisation,
    Position,
    Process,
    Round,
    RoundState,
    RoundType,
    StanceKind,
    User,
    Version,
    utcnow,
)
from consensus.permissions import Action
from consensus.services import endorsements as service
from consensus.web.loaders import load_process
from consensus.web.pages import round as round_page
from consensus.web.processes import load_round
from consensus.web.usecase import run
from consensus.web.utils import too_late

bp = Blueprint("endorsements", __name__)

# Colours of the chart; the labels and the table carry the meaning, not the colour.
CHART = [
    ("endorse", "#1f7a4d"),
    ("endorse_with_reservations", "#7fb89a"),
    ("abstain", "#9aa5b1"),
    ("object", "#b3261e"),
    ("no_response", "#ffffff"),
]


@bp.app_context_processor
def endorsement_helpers() -> dict[str, object]:
    return {
        "stance_labels": service.STANCE_LABELS,
        "clearance_labels": service.CLEARANCE_LABELS,
        "explain_result": explain,
        "reason_text": reason_text,
        "format_date": format_day,  # Babel's format_date, without its locale data
    }


# --- The plain-language explanation ----------------------------------------------------------
# tools/retally.py writes the same sentence (Dutch and English); keep the two in step.


def _verdict(rule: Rule, adopted: bool) -> str:
    if rule == Rule.CONSENSUS:
        return _("consensus reached") if adopted else _("no consensus")
    if rule == Rule.CONSENT:
        return _("adopted by consent") if adopted else _("not adopted by consent")
    if rule == Rule.UNANIMITY:
        return _("adopted unanimously") if adopted else _("no unanimity")
    return _("qualified majority reached") if adopted else _("no qualified majority")


def reason_text(reason: Reason, settings: decision_rules.RuleSettings) -> str:
    if reason == Reason.NO_PARTICIPANTS:
        return _("no organisations take part")
    if reason == Reason.NOT_ALL_RESPONDED:
        return _("not every organisation responded")
    if reason == Reason.NOT_ALL_ENDORSED:
        return _("not every organisation endorsed")
    if reason == Reason.ENDORSEMENT_QUORUM_NOT_MET:
        n = max(settings.quorum, 1)
        return ngettext("at least %(num)d had to endorse", "at least %(num)d had to endorse", n)
    if reason == Reason.RESPONSE_QUORUM_NOT_MET:
        n = settings.quorum
        return ngettext("at least %(num)d had to respond", "at least %(num)d had to respond", n)
    if reason == Reason.SHARE_NOT_MET:
        return _("%(share)d%% had to endorse", share=settings.share_percent or 100)
    return _("an objection")


def explain(result: decision_rules.Result, settings: decision_rules.RuleSettings) -> str:
    """E.g. "3 of 4 organisations endorsed, 1 abstained; no objections: consensus reached"."""
    t = result.tally
    parts = [
        ngettext(
            "%(num)d of %(total)d organisations endorsed",
            "%(num)d of %(total)d organisations endorsed",
            t.endorsed,
            total=t.participants,
        )
    ]
    if t.abstained:
        parts.append(ngettext("%(num)d abstained", "%(num)d abstained", t.abstained))
    if t.no_response:
        parts.append(ngettext("%(num)d did not respond", "%(num)d did not respond", t.no_response))
    objections = (
        ngettext("%(num)d objection", "%(num)d objections", t.objected)
        if t.objected
        else _("no objections")
    )
    sentence = f"{', '.join(parts)}; {objections}: {_verdict(settings.rule, result.adopted)}"
    reasons = [reason_text(r, settings) for r in result.reasons if r != Reason.OBJECTION]
    if reasons:
        sentence += f" ({'; '.join(reasons)})"
    return sentence


# --- SVG chart --------------------------------------------------------------------------------


def chart_bars(result: decision_rules.Result) -> list[dict[str, object]]:
    """One bar per stance (and "no response"), widths in percent of the participants."""
    t = result.tally
    values = {
        "endorse": t.endorsed - t.with_reservations,
        "endorse_with_reservations": t.with_reservations,
        "abstain": t.abstained,
        "object": t.objected,
        "no_response": t.no_response,
    }
    labels = {
        **{k.value: str(v) for k, v in service.STANCE_LABELS.items()},
        "no_response": _("No response"),
    }
    total = max(t.participants, 1)
    return [
        {
            "key": key,
            "label": labels[key],
            "count": values[key],
            "width": round(values[key] * 100 / total, 2),
            "colour": colour,
        }
        for key, colour in CHART
    ]


# --- Loading ----------------------------------------------------------------------------------


def _round_of_type(slug: str, round_id: int, round_type: RoundType) -> tuple[Process, Round]:
    process = load_process(slug)
    round_ = load_round(process, round_id)
    if round_.type != round_type:
        abort(404)
    return process, round_


def _my_organisation_ids() -> set[int]:
    return {m.organisation_id for m in permissions.valid_memberships(current_user)}


def _allowed_organisations(process: Process, round_: Round, action: Action) -> list[Organisation]:
    return [
        o
        for o in permissions.acting_organisations(current_user, process, action)
        if permissions.gate(current_user, action, process, o, round_=round_)
    ]


def _version(round_: Round) -> Version | None:
    """The round's version with its position, always in one statement: the same work
    whatever the session already holds, and without the text's paragraphs or the
    position's other versions (loaded only if a page uses them)."""
    if not round_.version_id:
        return None
    return db.session.execute(
        select(Version)
        .where(Version.id == round_.version_id)
        .options(
            joinedload(Version.position).lazyload(Position.versions),
            lazyload(Version.paragraphs),
        )
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _version_number(round_: Round, loaded: dict[str, Version | None]) -> int | None:
    if "version" in loaded:
        version = loaded["version"]
        return version.number if version is not None else None
    if not round_.version_id:
        return None
    return db.session.scalar(select(Version.number).where(Version.id == round_.version_id))


# --- Endorsement rounds -----------------------------------------------------------------------


def _stance_form(
    process: Process,
    round_: Round,
    formdata: bool = True,
    organisations: list[Organisation] | None = None,
) -> StanceForm | None:
    if organisations is None:
        organisations = _allowed_organisations(process, round_, Action.ENDORSE)
    if not organisations:
        return None
    form = StanceForm() if formdata else StanceForm(formdata=None)
    form.organisation_id.choices = choices((o.id, o.name) for o in organisations)
    return form


def _tally_context(
    process: Process, round_: Round, visible: bool, mine: frozenset[int] | None
) -> dict[str, object]:
    """What the tally fragment shows: loads every organisation's current stance."""
    tally = service.round_tally(process, round_)
    outcome = service.outcome_for(round_) if round_.state == RoundState.CLOSED else None
    result = service.outcome_result(outcome) if outcome else tally.result
    settings = service.outcome_settings(outcome) if outcome else tally.settings
    return {
        "process": process,
        "round": round_,
        "tally": tally,
        "outcome": outcome,
        "result": result,
        "settings": settings,
        "bars": chart_bars(result),
        "visible": visible,
        "my_orgs": mine or frozenset(),  # only asked when the tally is hidden
        "version": _version(round_),
        "live": round_.state == RoundState.OPEN and not process.hide_tally_until_closed,
    }


def _viewer_facts(process: Process, round_: Round) -> round_page.SightKey:
    """What the tally and history depend on besides the data: whether this person sees every
    stance, and if not, which organisations' own stances they see."""
    visible = permissions.can_see_tally(current_user, process, round_)
    mine = None if visible else frozenset(_my_organisation_ids())
    return round_page.SightKey(round_.id, visible, mine)


def _tally_html(
    process: Process, round_: Round, facts: round_page.SightKey | None = None
) -> Markup:
    sight = facts or _viewer_facts(process, round_)
    return round_page.TALLY.html(
        sight,
        lambda: _tally_context(process, round_, sight.sees_all, sight.own_organisation_ids),
    )


# The round page shows the latest stances; the history page all of them.
HISTORY_ON_PAGE = 50


def _history_html(
    process: Process,
    round_: Round,
    facts: round_page.SightKey | None = None,
    *,
    everything: bool = False,
) -> Markup:
    sight = facts or _viewer_facts(process, round_)

    def context() -> dict[str, object]:
        history, total = service.stance_history(
            round_,
            organisation_ids=sight.own_organisation_ids,
            latest=None if everything else HISTORY_ON_PAGE,
        )
        return {
            "process": process,
            "round": round_,
            "history": history,
            "total": total,
            "everything": everything,
        }

    return round_page.HISTORY.html(round_page.HistoryKey(sight, everything), context)


def _endorsement_page(
    process: Process, round_: Round, status: int = 200, **overrides: object
) -> tuple[str, int]:
    """The round page: a cached body (the same for everyone) with the viewer's forms in its
    slots, then the tally and the history (cached per what the viewer may see)."""
    now = utcnow()
    is_open = round_.is_open_at(now)
    facts = _viewer_facts(process, round_)  # once for the tally and the history
    can_manage = permissions.can_manage_process(current_user, process)
    closed = round_.state == RoundState.CLOSED

    loaded: dict[str, Version | None] = {}  # the version, when the body was rendered now

    def body_context() -> dict[str, object]:
        loaded["version"] = _version(round_)
        return {
            "process": process,
            "round": round_,
            "outcome": service.outcome_for(round_) if closed else None,
            "version": loaded["version"],
            "needed": service.minimum_needed(process),
            "rule_labels": RULE_LABELS,
        }

    def render_stance() -> str:
        if "stance_form" in overrides:  # a form with the viewer's input and its errors
            return render_stance_with(overrides["stance_form"])  # type: ignore[arg-type]
        # An empty form: the same for everyone who may speak for the same organisations, so
        # kept like the body (the CSRF token is put in per request).
        organisations = _allowed_organisations(process, round_, Action.ENDORSE) if is_open else []
        if not organisations and not (is_open and not can_manage):
            return ""
        key = round_page.StanceFormKey(
            round_.id, tuple(o.id for o in organisations), is_open, can_manage
        )
        return round_page.STANCE_FORM.html(
            key,
            lambda: stance_context(
                _stance_form(process, round_, formdata=False, organisations=organisations)
                if organisations
                else None
            ),
        )

    def render_stance_with(stance_form: StanceForm | None) -> str:
        if stance_form is None and not (is_open and not can_manage):
            return ""
        return render_template("endorsements/_stance_section.html", **stance_context(stance_form))

    def stance_context(stance_form: StanceForm | None) -> dict[str, object]:
        return {
            "process": process,
            "round": round_,
            "stance_form": stance_form,
            "version_number": round_page.VERSION_NUMBER.get(
                round_page.RoundKey(round_.id),
                compute=lambda: _version_number(round_, loaded),
            ),
            "open": is_open,
            "can_manage": can_manage,
        }

    def render_statement_form() -> str:
        if (
            not closed
            or process.is_published
            or not permissions.is_facilitator_of(current_user, process)
        ):
            return ""
        outcome = service.outcome_for(round_)
        if outcome is None:
            return ""
        form = overrides.get("statement_form") or OutcomeStatementForm(obj=outcome, formdata=None)
        return render_template(
            "endorsements/_statement_form.html",
            process=process,
            round=round_,
            outcome=outcome,
            statement_form=form,
        )

    body_html = round_page.BODY.part(
        round_page.RoundKey(round_.id),
        body_context,
        slots={"stance": render_stance, "statement-form": render_statement_form},
    )
    page = render_template(
        "endorsements/round.html",
        process=process,
        round=round_,
        body_html=body_html,
        tally_html=_tally_html(process, round_, facts),
        history_html=_history_html(process, round_, facts),
    )
    return page, status


@bp.get("/processes/<slug>/rounds/<int:round_id>/endorsement")
@login_required
def endorsement(slug: str, round_id: int) -> tuple[str, int]:
    process, round_ = _round_of_type(slug, round_id, RoundType.ENDORSEMENT)
    return _endorsement_page(process, round_)


@bp.get("/processes/<slug>/rounds/<int:round_id>/endorsement/history")
@login_required
def endorsement_history(slug: str, round_id: int) -> str:
    """Every stance cast in the round, changes included (the round page shows the latest)."""
    process, round_ = _round_of_type(slug, round_id, RoundType.ENDORSEMENT)
    return render_template(
        "endorsements/history.html",
        process=process,
        round=round_,
        history_html=_history_html(process, round_, everything=True),
    )


@bp.get("/processes/<slug>/rounds/<int:round_id>/endorsement/tally")
@login_required
def tally_fragment(slug: str, round_id: int) -> str | Response:
    """The live tally alone, for htmx polling; without htmx, the whole page."""
    process, round_ = _round_of_type(slug, round_id, RoundType.ENDORSEMENT)
    if not htmx:
        return redirect(url_for("endorsements.endorsement", slug=slug, round_id=round_id))
    return _tally_html(process, round_)


@bp.post("/processes/<slug>/rounds/<int:round_id>/stances")
@login_required
def cast(slug: str, round_id: int) -> Response | tuple[str, int]:
    process, round_ = _round_of_type(slug, round_id, RoundType.ENDORSEMENT)
    form = _stance_form(process, round_)
    late = too_late(round_, _("Your stance was not recorded."))
    if late:
        # The round closed between showing the form and sending it: not a ban, say so.
        flash(late, "error")
        return _endorsement_page(process, round_, 409)
    if form is None:
        # Nobody here may act for any organisation now: say why in the one place that knows.
        organisation = db.session.get(
            Organisation, request.form.get("organisation_id", type=int) or 0
        )
        decision = permissions.gate(
            current_user, Action.ENDORSE, process, organisation, round_=round_
        )
        flash(decision.reason or _("You cannot act for this organisation."), "error")
        abort(403)
    if form.validate_on_submit():
        organisation = db.session.get(Organisation, form.organisation_id.data)
        if organisation is None:
            abort(400)
        # The message is made before the commit (run does): afterwards the organisation
        # would be read again, in a transaction that takes SQLite's write lock for the rest
        # of the request.
        cast = run(
            service.cast_stance,
            round_,
            actor=current_user,
            organisation=organisation,
            kind=StanceKind(form.kind.data),
            text=form.text.data or "",
            form=form,
            success=lambda _stance: _(
                "Recorded: %(org)s — %(stance)s.",
                org=organisation.name,
                stance=service.STANCE_LABELS[StanceKind(form.kind.data)],
            ),
        )
        if cast:
            return redirect(url_for("endorsements.endorsement", slug=slug, round_id=round_id))
        assert cast.error is not None
        late = too_late(round_, _("Your stance was not recorded."))
        if late:
            flash(late, "error")
            return _endorsement_page(process, round_, 409)
        if cast.error.status_code == 403:
            abort(403)
        return _endorsement_page(
            process, round_, 409 if cast.error.status_code == 409 else 422, stance_form=form
        )
    return _endorsement_page(process, round_, 422, stance_form=form)


@bp.post("/processes/<slug>/rounds/<int:round_id>/outcome")
@login_required
def statement(slug: str, round_id: int) -> Response | tuple[str, int]:
    process, round_ = _round_of_type(slug, round_id, RoundType.ENDORSEMENT)
    permissions.require(permissions.is_facilitator_of(current_user, process))
    outcome = service.outcome_for(round_)
    if outcome is None:
        abort(404)
    form = OutcomeStatementForm()
    if form.validate_on_submit() and run(
        service.set_outcome_statement,
        outcome,
        actor=current_user,
        statement=form.statement.data or "",
        review_on=form.review_on.data,
        form=form,
        success=_("The outcome statement has been saved."),
    ):
        return redirect(url_for("endorsements.endorsement", slug=slug, round_id=round_id))
    return _endorsement_page(process, round_, 422, statement_form=form)


# --- Clearance rounds -------------------------------------------------------------------------


def _clearance_page(
    process: Process, round_: Round, status: int = 200, form: ClearanceForm | None = None
) -> tuple[str, int]:
    now = utcnow()
    if form is None and round_.is_open_at(now):
        organisations = _allowed_organisations(process, round_, Action.CLEAR)
        if organisations:
            form = ClearanceForm(formdata=None)
            form.organisation_id.choices = choices((o.id, o.name) for o in organisations)
    current = service.current_clearances(round_)
    rows = [
        (p.organisation, current.get(p.organisation_id)) for p in process.current_participations
    ]
    return render_template(
        "endorsements/clearance.html",
        process=process,
        round=round_,
        rows=rows,
        history=service.clearance_history(round_),
        version=_version(round_),
        form=form,
        now=now,
        round_type_labels=ROUND_TYPE_LABELS,
    ), status


@bp.get("/processes/<slug>/rounds/<int:round_id>/clearance")
@login_required
def clearance(slug: str, round_id: int) -> tuple[str, int]:
    process, round_ = _round_of_type(slug, round_id, RoundType.CLEARANCE)
    return _clearance_page(process, round_)


@bp.post("/processes/<slug>/rounds/<int:round_id>/clearances")
@login_required
def clear(slug: str, round_id: int) -> Response | tuple[str, int]:
    process, round_ = _round_of_type(slug, round_id, RoundType.CLEARANCE)
    organisations = _allowed_organisations(process, round_, Action.CLEAR)
    late = too_late(round_, _("Your clearance was not recorded."))
    if late:
        flash(late, "error")
        return _clearance_page(process, round_, 409)
    if not organisations:
        abort(403)
    form = ClearanceForm()
    form.organisation_id.choices = choices((o.id, o.name) for o in organisations)
    if form.validate_on_submit():
        organisation = db.session.get(Organisation, form.organisation_id.data)
        if organisation is None:
            abort(400)
        if not run(
            service.record_clearance,
            round_,
            actor=current_user,
            organisation=organisation,
            decision=ClearanceDecision(form.decision.data),
            remarks=form.remarks.data or "",
            form=form,
            forbidden_is_403=True,
            success=lambda _clearance: _("Recorded for %(org)s.", org=organisation.name),
        ):
            return _clearance_page(process, round_, 422, form)
        return redirect(url_for("endorsements.clearance", slug=slug, round_id=round_id))
    return _clearance_page(process, round_, 422, form)


# --- Delegation of the mandate ----------------------------------------------------------------


def _represented(user: User) -> list[Organisation]:
    """Organisations this person represents in their own right (may delegate)."""
    return permissions.represented_organisations(user)


def _delegation_form(formdata: bool = True) -> DelegationForm | None:
    organisations = _represented(current_user)
    if not organisations:
        return None
    form = DelegationForm() if formdata else DelegationForm(formdata=None)
    form.organisation_id.choices = choices((o.id, o.name) for o in organisations)
    now = utcnow()
    members = db.session.execute(
        select(Membership)
        .where(
            Membership.organisation_id.in_([o.id for o in organisations]),
            Membership.user_id != current_user.id,
        )
        .order_by(Membership.organisation_id)
    ).scalars()
    form.delegate_id.choices = choices(
        (m.user_id, f"{m.user.display_name} ({m.organisation.short_name or m.organisation.name})")
        for m in members
        if m.is_valid_at(now) and m.user.active
    )
    if not formdata:
        form.valid_from.data = to_local_input(now)
    return form


def _delegations_page(status: int = 200, form: DelegationForm | None = None) -> tuple[str, int]:
    now = utcnow()
    delegations = service.delegations_of(current_user)
    return render_template(
        "endorsements/delegations.html",
        delegations=delegations,
        form=form if form is not None else _delegation_form(formdata=False),
        now=now,
        can_revoke=lambda d: permissions.can_revoke(current_user, d),
        revoke_form=EmptyForm(),
    ), status


@bp.get("/account/delegations")
@login_required
def delegations() -> tuple[str, int]:
    return _delegations_page()


@bp.post("/account/delegations")
@login_required
def delegate() -> Response | tuple[str, int]:
    form = _delegation_form()
    if form is None:
        abort(403)
    if form.validate_on_submit():
        organisation = db.session.get(Organisation, form.organisation_id.data)
        substitute = db.session.get(User, form.delegate_id.data)
        if organisation is None or substitute is None:
            abort(400)
        if not run(
            service.create_delegation,
            actor=current_user,
            organisation=organisation,
            delegate=substitute,
            valid_from=from_local_input(form.valid_from.data),
            valid_until=from_local_input(form.valid_until.data),
            note=form.note.data or "",
            form=form,
            forbidden_is_403=True,
            success=lambda _delegation: _(
                "%(name)s is now substitute for %(org)s.",
                name=substitute.display_name,
                org=organisation.name,
            ),
        ):
            return _delegations_page(422, form)
        return redirect(url_for("endorsements.delegations"))
    return _delegations_page(422, form)


@bp.post("/account/delegations/<int:delegation_id>/revoke")
@login_required
def revoke(delegation_id: int) -> Response:
    delegation = db.session.get(Delegation, delegation_id)
    # Someone with no part in it learns nothing, not even that it exists.
    if delegation is None or delegation not in service.delegations_of(current_user):
        abort(404)
    if not EmptyForm().validate_on_submit():
        abort(400)
    run(
        service.revoke_delegation,
        delegation,
        actor=current_user,
        success=_("The delegation has been revoked."),
    )
    return redirect(url_for("endorsements.delegations"))
