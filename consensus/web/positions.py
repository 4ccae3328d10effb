"""Positions: versions and their hashes, diffs, comments, amendments, disposition report.

Views load → check (permissions, via the helpers below) → call a service → commit →
render. For htmx requests that are not boosted navigations (inline comments) they return
just the fragment; every form also works as a plain POST with a redirect.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import bindparam, inspect, select
from sqlalchemy.orm import defer, joinedload, lazyload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from consensus import permissions
from consensus.domain.timeutil import from_local_input
from consensus.domain.visible import require_visible
from consensus.extensions import db, htmx
from consensus.formats.cldr import format_day
from consensus.forms import EmptyForm, choices
from consensus.forms.admin import ROLE_LABELS
from consensus.forms.drafting import (
    CONTRIBUTION_KINDS,
    FEEDBACK_CHOICES,
    ContributionEditForm,
    ContributionForm,
    DraftingSettingsForm,
    FeedbackForm,
    GroupDecisionForm,
    NoteForm,
    SendDispositionForm,
)
from consensus.forms.positions import (
    AMENDMENT_KINDS,
    DECISION_LABELS,
    STATE_LABELS,
    AmendmentForm,
    ApplyForm,
    CommentEditForm,
    CommentForm,
    DecisionForm,
    NewPositionForm,
    PinForm,
    PositionForm,
    RebaseForm,
    VersionForm,
)
from consensus.forms.processes import ROUND_TYPE_LABELS
from consensus.models import (
    Amendment,
    AmendmentState,
    Comment,
    CommentRevision,
    Contribution,
    ContributionKind,
    DispositionReview,
    MembershipRole,
    Organisation,
    Position,
    Process,
    Round,
    RoundState,
    RoundType,
    User,
    Version,
    VersionParagraph,
    utcnow,
)
from consensus.permissions import ACTION_ROUND_TYPES, Action
from consensus.permissions import drafting as drafting_rules
from consensus.permissions.drafting import individual_contributions_allowed
from consensus.services import drafting
from consensus.services import positions as service
from consensus.services.errors import DomainError
from consensus.web.labels import ROUND_STATE_LABELS
from consensus.web.loaders import load_process
from consensus.web.pages import amendments as amendments_page
from consensus.web.pages import diff as diff_page
from consensus.web.pages import disposition as disposition_page
from consensus.web.pages import version as version_page
from consensus.web.processes import load_round
from consensus.web.usecase import run
from consensus.web.utils import attach_error, latest_started_round, round_closed_page, too_late

bp = Blueprint("positions", __name__, url_prefix="/processes/<slug>/positions")


@bp.context_processor
def labels() -> dict[str, object]:
    return {
        "amendment_state_labels": STATE_LABELS,
        "decision_labels": DECISION_LABELS,
        "amendment_kinds": AMENDMENT_KINDS,
        "round_type_labels": ROUND_TYPE_LABELS,
        "round_state_labels": ROUND_STATE_LABELS,
        # Translated here, once per render, not once per comment that shows a role.
        "role_labels": {
            "official": str(ROLE_LABELS[MembershipRole.OFFICIAL]),
            "representative": str(ROLE_LABELS[MembershipRole.REPRESENTATIVE]),
            "facilitator": str(_l("Facilitator")),
            drafting.ORGANISATION_ROLE: str(_l("Contribution of the organisation")),
        },
        "contribution_state_labels": {
            "draft": _("Draft"),
            "cleared": _("Cleared"),
            "submitted": _("Submitted"),
            "discarded": _("Discarded"),
        },
        "state_kinds": {
            "pending": "info",
            "accepted": "success",
            "accepted_in_part": "success",
            "rejected": "error",
            "withdrawn": "muted",
        },
    }


# --- Loading and checks -----------------------------------------------------------------------


# Paragraphs are loaded for the one or two versions a page shows, when it shows them (not for
# every version, and not at all when the text comes from the cache); the authors' memberships
# are never shown. Built once: a reused statement keeps its cache key.
_POSITION = (
    select(Position)
    .where(Position.id == bindparam("position_id"), Position.process_id == bindparam("process_id"))
    .options(
        selectinload(Position.versions).options(
            lazyload(Version.paragraphs),
            joinedload(Version.created_by).lazyload(User.memberships),
        )
    )
)


def load_position(process: Process, position_id: int) -> Position:
    position = db.session.execute(
        _POSITION, {"position_id": position_id, "process_id": process.id}
    ).scalar_one_or_none()
    if position is None:
        abort(404)
    return position


@dataclass(frozen=True)
class VersionRef:
    """A version as the page around a cached body shows it (plain data, kept per state)."""

    id: int
    number: int
    sha256: str
    created_at: datetime
    created_by_name: str | None
    change_summary: str

    @property
    def short_hash(self) -> str:
        return self.sha256[:12]


@dataclass(frozen=True)
class PositionOutline:
    """A position's title and its versions' numbers: what a page whose body comes from the
    cache needs to find and name the versions, without loading the ORM objects."""

    id: int
    title: str
    versions: tuple[VersionRef, ...]  # by number

    @property
    def latest(self) -> VersionRef | None:
        return self.versions[-1] if self.versions else None

    def version(self, number: int) -> VersionRef:
        found = next((v for v in self.versions if v.number == number), None)
        if found is None:
            abort(404)
        return found

    def round_version(self, process: Process) -> tuple[Round | None, VersionRef | None]:
        """As services.positions.round_version: the open round and the version that
        contributions now go to (the round's, when it is about this position; else the
        latest)."""
        current = process.open_round()
        if current is not None and current.version_id is not None:
            return current, next((v for v in self.versions if v.id == current.version_id), None)
        return current, self.latest


_OUTLINE_POSITION = select(Position.id, Position.title).where(
    Position.id == bindparam("position_id"), Position.process_id == bindparam("process_id")
)
_OUTLINE_VERSIONS = (
    select(
        Version.id,
        Version.number,
        Version.sha256,
        Version.created_at,
        Version.change_summary,
        User.display_name,
    )
    .outerjoin(User, User.id == Version.created_by_id)
    .where(Version.position_id == bindparam("position_id"))
    .order_by(Version.number)
)


def load_outline(process: Process, position_id: int) -> PositionOutline:
    """The outline of a position of `process` (404 when it is not one), kept by the audit
    head like the fragments it goes with (a new version or title is an audited change)."""

    def compute() -> PositionOutline | None:
        found = db.session.execute(
            _OUTLINE_POSITION, {"position_id": position_id, "process_id": process.id}
        ).first()
        if found is None:
            return None
        rows = db.session.execute(_OUTLINE_VERSIONS, {"position_id": position_id})
        return PositionOutline(
            id=found.id,
            title=found.title,
            versions=tuple(
                VersionRef(
                    id=row.id,
                    number=row.number,
                    sha256=row.sha256,
                    created_at=row.created_at,
                    created_by_name=row.display_name,
                    change_summary=row.change_summary,
                )
                for row in rows
            ),
        )

    outline = version_page.outline(process.id, position_id, compute)
    if outline is None:
        abort(404)
    return outline


def load_version(position: Position, number: int) -> Version:
    version = next((v for v in position.versions if v.number == number), None)
    if version is None:
        abort(404)
    return version


def load_amendment(position: Position, number: int) -> Amendment:
    amendment = (
        db.session.execute(
            select(Amendment)
            .where(Amendment.position_id == position.id, Amendment.number == number)
            .options(*_amendment_options())
        )
        .unique()
        .scalar_one_or_none()
    )
    if amendment is None:
        abort(404)
    return amendment


def _amendment_options() -> list[object]:
    return [
        joinedload(Amendment.organisation),
        joinedload(Amendment.author),
        joinedload(Amendment.decided_by),
    ]


def load_comment(position: Position, comment_id: int) -> Comment:
    comment = (
        db.session.execute(
            select(Comment)
            .where(
                Comment.id == comment_id,
                Comment.version_id.in_([v.id for v in position.versions]),
            )
            .options(joinedload(Comment.author), joinedload(Comment.organisation))
        )
        .unique()
        .scalar_one_or_none()
    )
    if comment is None:
        abort(404)
    return comment


def _organisation(raw: object) -> Organisation | None:
    try:
        organisation_id = int(raw)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return db.session.get(Organisation, organisation_id) if organisation_id else None


def _can_manage(process: Process) -> bool:
    return permissions.can_manage_process(current_user, process)


def _acting(process: Process, action: Action) -> list[Organisation]:
    """Organisations the current user may act for now (the gate decides, per org)."""
    return [
        o
        for o in permissions.acting_organisations(current_user, process, action)
        if permissions.gate(current_user, action, process, o)
    ]


def _voices(process: Process, action: Action) -> list[tuple[int, str]]:
    """Choices for "on behalf of": organisations, and for facilitators (comments only)
    the facilitation itself (value 0)."""
    options = (
        [(o.id, o.name) for o in _acting(process, action)]
        if individual_contributions_allowed(process)
        else []  # input comes as organisation contributions (the organisation's space)
    )
    if action == Action.COMMENT and _can_manage(process) and process.state.value == "active":
        options.insert(0, (0, _("Facilitation")))
    return options


def _refuse_late(
    process: Process, position: Position, version: Version, action: Action, not_done: str
) -> None:
    """A form that arrives after its round closed: say so (409, a link back to the text),
    instead of a refusal that reads like a ban. Returns when the round is still open."""
    late = too_late(latest_started_round(process, ACTION_ROUND_TYPES[action]), not_done)
    if late:
        abort(round_closed_page(late, _version_url(process, position, version)))


def _partial() -> bool:
    """An inline htmx request (not a boosted page navigation) gets a fragment back."""
    return bool(htmx) and not htmx.boosted


def _version_url(
    process: Process,
    position: Position,
    version: Version,
    anchor: str = "",
    *,
    open_anchor: str | None = None,
) -> str:
    """The version page, scrolled to `anchor`, with paragraph `open_anchor` open (its
    discussion may be one that is sent only when opened)."""
    return url_for(
        "positions.version",
        slug=process.slug,
        position_id=position.id,
        number=version.number,
        open=open_anchor,
        _anchor=anchor or None,
    )


def _comment_url(process: Process, position: Position, version: Version, comment: Comment) -> str:
    return _version_url(
        process, position, version, f"comment-{comment.id}", open_anchor=comment.paragraph_anchor
    )


# --- Positions --------------------------------------------------------------------------------


@bp.get("/")
@login_required
def index(slug: str) -> str:
    process = load_process(slug)
    positions = list(
        db.session.execute(
            select(Position).where(Position.process_id == process.id).order_by(Position.id)
        ).scalars()
    )
    settings_form = None
    if _can_manage(process):
        settings_form = DraftingSettingsForm(formdata=None)
        settings_form.individual_contributions.data = individual_contributions_allowed(process)
    return render_template(
        "positions/index.html",
        process=process,
        positions=positions,
        can_manage=_can_manage(process),
        settings_form=settings_form,
    )


def _metadata_from(form: PositionForm) -> dict[str, object]:
    return {
        "title": form.title.data or "",
        "subject": form.subject.data or "",
        "addressee": form.addressee.data or "",
        "place": form.place.data or "",
        "letter_date": form.letter_date.data if isinstance(form.letter_date.data, date) else None,
        "reference": form.reference.data or "",
    }


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new(slug: str) -> str | Response | tuple[str, int]:
    process = load_process(slug)
    permissions.require(_can_manage(process))
    form = NewPositionForm()
    if form.validate_on_submit():
        created = run(
            service.create_position,
            process,
            actor=current_user,
            body=form.body.data or "",
            form=form,
            success=_("The position has been created as version 1."),
            **_metadata_from(form),
        )
        if created:
            return redirect(
                url_for("positions.version", slug=slug, position_id=created.value.id, number=1)
            )
    status = 400 if form.errors else 200
    return render_template("positions/form.html", form=form, process=process, position=None), status


@bp.get("/<int:position_id>")
@login_required
def show(slug: str, position_id: int) -> Response:
    process = load_process(slug)
    position = load_position(process, position_id)
    latest = position.latest
    if latest is None:
        abort(404)
    return redirect(_version_url(process, position, latest))


@bp.route("/<int:position_id>/edit", methods=["GET", "POST"])
@login_required
def edit(slug: str, position_id: int) -> str | Response | tuple[str, int]:
    process = load_process(slug)
    permissions.require(_can_manage(process))
    position = load_position(process, position_id)
    form = PositionForm(obj=position)
    if form.validate_on_submit() and run(
        service.update_position,
        position,
        process,
        actor=current_user,
        form=form,
        success=_("The letter details have been saved."),
        **_metadata_from(form),
    ):
        return redirect(url_for("positions.show", slug=slug, position_id=position_id))
    status = 400 if form.errors else 200
    return render_template(
        "positions/form.html", form=form, process=process, position=position
    ), status


# --- Versions ---------------------------------------------------------------------------------


def _comment_form(process: Process) -> CommentForm | None:
    voices = _voices(process, Action.COMMENT)
    if not voices:
        return None
    form = CommentForm(formdata=None)
    form.organisation_id.choices = choices(voices)
    return form


def _thread_context(
    process: Process,
    position: Position | PositionOutline,
    version: Version | VersionRef,
    target: Version | VersionRef | None,
) -> dict[str, object]:
    """What the comment fragments need, shared by the page and the htmx responses (the
    version page passes its outline; the parts it renders get the ORM objects)."""
    can_contribute = target is not None and target.id == version.id
    comment_form = _comment_form(process) if can_contribute else None
    current = process.open_round()
    # New threads only while a drafting or consultation round is open; facilitators may
    # still answer existing comments afterwards (their replies join the thread's round).
    can_start = (
        comment_form is not None
        and current is not None
        and current.type in {RoundType.DRAFTING, RoundType.CONSULTATION}
    )
    now, edit_window, can_manage = utcnow(), service.comment_edit_window(), _can_manage(process)
    return {
        "can_start": can_start,
        "process": process,
        "position": position,
        "version": version,
        "comment_form": comment_form,
        "now": now,
        "edit_window": edit_window,
        "can_manage": can_manage,
        # Edit and Remove buttons (the version page's cached threads get their own: its key)
        "comment_viewer": version_page.CommentViewer.of(
            current_user._get_current_object(),
            moderates=can_manage,
            now=now,
            edit_window=edit_window,
        ),
        "remove_form": EmptyForm(),
    }


def _voice_slot(fid: str) -> Markup:
    """Where a cached page's comment forms say "on behalf of": filled per viewer."""
    return Markup("\x00voices:%s\x00") % fid  # noqa: S704 - fid is escaped by Markup's %  # nosec B704


_VOICE_SLOT = re.compile(b"\x00voices:([^\x00]*)\x00")


def _voice_filler(form: CommentForm | None) -> Callable[[bytes], bytes]:
    """Put this viewer's organisations into every comment form of the cached thread
    (kept as bytes, fragments.part): rendered once with a stand-in for the form's id, then
    copied into each form. Both are template output; the slot's fid was escaped when the
    slot was made."""

    def fill(data: bytes) -> bytes:
        if form is None or b"\x00voices:" not in data:
            return data
        snippet = render_template(
            "positions/_comment_voices.html", comment_form=form, fid="\x01"
        ).encode("utf-8")
        return _VOICE_SLOT.sub(lambda m: snippet.replace(b"\x01", m.group(1)), data)

    return fill


@bp.get("/<int:position_id>/versions/<int:number>")
@login_required
def version(slug: str, position_id: int, number: int) -> str:
    process = load_process(slug)
    # The page around the cached parts needs only the outline (plain data, kept by the
    # audit head); the ORM position and version are loaded when a part must be rendered.
    outline = load_outline(process, position_id)
    version = outline.version(number)
    current, target = outline.round_version(process)
    loaded: dict[str, Any] = {}  # the ORM objects and amendments, once, for whichever misses

    def orm_context() -> dict[str, object]:
        if "position" not in loaded:
            loaded["position"] = load_position(process, position_id)
            loaded["version"] = load_version(loaded["position"], number)
        return {**thread_context, "position": loaded["position"], "version": loaded["version"]}

    def amendments() -> list[Amendment]:
        if "amendments" not in loaded:
            loaded["amendments"] = service.load_amendments(position_id, version.id)
        return loaded["amendments"]  # type: ignore[no-any-return]

    can_propose = _can_propose(process, version, target)
    pin_form = None
    scheduled = [r for r in process.rounds if r.state == RoundState.SCHEDULED]
    if _can_manage(process) and scheduled:
        pin_form = PinForm(prefix="pin")
        pin_form.round_id.choices = choices((r.id, r.title) for r in scheduled)
    thread_context = _thread_context(process, outline, version, target)
    comment_form = thread_context["comment_form"]
    open_anchor = request.args.get("open", "")[:64]
    line_numbers = request.args.get("lines") == "1"

    comment_viewer = version_page.comment_viewer(
        current_user._get_current_object(),
        version.id,
        moderates=bool(thread_context["can_manage"]),
        now=thread_context["now"],  # type: ignore[arg-type]
        edit_window=thread_context["edit_window"],  # type: ignore[arg-type]
    )

    def body_context() -> dict[str, object]:
        comment_counts = service.comment_counts(version.id)
        # A long discussion is sent when its paragraph is opened (positions.discussion):
        # 500 comments in closed <details> made a 414 KB page for every reader.
        lazy = sum(comment_counts.values()) > current_app.config["VERSION_INLINE_COMMENTS"]
        comments = service.load_comments(
            [version.id], anchors={None, open_anchor or None} if lazy else None
        )
        return {
            "threads": service.threads(comments),
            "comment_counts": comment_counts,
            "amendments_by_anchor": _amendments_by_anchor(amendments()),
            "refs": drafting.References(orm_context()["position"].versions),  # type: ignore[attr-defined]
            "can_propose": can_propose,
            "open_anchor": open_anchor,
            "lazy": lazy,
            "line_numbers": line_numbers,
            "numbered": {p.anchor: p for p in drafting.numbered(orm_context()["version"])}  # type: ignore[arg-type]
            if line_numbers
            else {},
            "voice_slots": _voice_slot,
            **orm_context(),
            "comment_viewer": comment_viewer,
        }

    # The part depends on the data (the audit head) and on these facts of the viewer.
    # The longest part of any page (every thread of the version): kept and sent as bytes.
    body_key = version_page.VersionBodyKey(
        version.id,
        can_start=bool(thread_context["can_start"]),
        can_propose=can_propose,
        can_comment=comment_form is not None,
        comments=comment_viewer,
        open_anchor=open_anchor,
    )
    body_part = version_page.BODY_LINES if line_numbers else version_page.BODY
    body = body_part.part(body_key, body_context, fill=_voice_filler(comment_form))
    aside_key = version_page.VersionAsideKey(
        version.id, bool(thread_context["can_manage"]), pin_form is not None
    )
    aside_html = version_page.ASIDE.html(
        aside_key,
        lambda: {
            "amendments": amendments(),
            "rounds_about": [r for r in process.rounds if r.version_id == version.id],
            "has_pin_form": pin_form is not None,
            **orm_context(),
        },
        slots={
            "pin-form": lambda: (
                render_template("positions/_pin_form.html", pin_form=pin_form, **thread_context)
                if pin_form is not None
                else ""
            )
        },
    )
    # The top (title, version bar, notices) follows from the outline and the open round
    # only: the same for every viewer of this state.
    head_html = version_page.HEAD.html(
        version_page.VersionKey(version.id),
        lambda: {
            "current": current,
            "target": target,
            "process": process,
            "position": outline,
            "version": version,
        },
    )
    return render_template(
        "positions/version.html",
        spaces=_spaces(process),
        head_html=head_html,
        body_html=body,
        aside_html=aside_html,
        **thread_context,
    )


def _can_propose(
    process: Process, version: Version | VersionRef, target: Version | VersionRef | None
) -> bool:
    """Amendments are proposed on the version the open round is about."""
    return (
        target is not None
        and target.id == version.id
        and bool(_acting(process, Action.PROPOSE_AMENDMENT))
        and individual_contributions_allowed(process)
    )


def _amendments_by_anchor(amendments: list[Amendment]) -> dict[str, list[Amendment]]:
    by_anchor: dict[str, list[Amendment]] = {}
    for amendment in amendments:
        key = amendment.paragraph_anchor or amendment.insert_after_anchor or ""
        by_anchor.setdefault(key, []).append(amendment)
    return by_anchor


@bp.get("/<int:position_id>/versions/<int:number>/discussions/<anchor>")
@login_required
def discussion(slug: str, position_id: int, number: int, anchor: str) -> str | Response:
    """One paragraph's discussion, sent when the paragraph is opened on a version page with
    many comments (htmx); otherwise the version page with this paragraph open."""
    process = load_process(slug)
    position = load_position(process, position_id)
    version = load_version(position, number)
    paragraph = next((p for p in version.paragraphs if p.anchor == anchor), None)
    if paragraph is None:
        abort(404)
    if not _partial():
        return redirect(_version_url(process, position, version, anchor, open_anchor=anchor))
    _, target = service.round_version(process, position)
    context = _thread_context(process, position, version, target)
    amendments = service.load_amendments(position.id, version.id)
    return render_template(
        "positions/_para_panel.html",
        p=paragraph,
        para_amendments=_amendments_by_anchor(amendments).get(anchor, []),
        refs=drafting.References(position.versions),
        can_propose=_can_propose(process, version, target),
        threads=service.threads(service.load_comments([version.id], anchors=[anchor])),
        **context,
    )


@bp.get("/<int:position_id>/versions/<int:number>.md")
@login_required
def version_markdown(slug: str, position_id: int, number: int) -> Response:
    """The exact canonical bytes: `sha256sum` of this download equals the hash shown."""
    process = load_process(slug)
    position = load_position(process, position_id)
    version = load_version(position, number)
    data = version.body.encode("utf-8")
    digest = hashlib.sha256(data).digest()
    response = Response(data, mimetype="text/markdown")
    response.headers["Content-Type"] = "text/markdown; charset=utf-8"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{process.slug}-{position.id}-v{version.number}.md"'
    )
    response.headers["ETag"] = f'"{version.sha256}"'
    response.headers["Repr-Digest"] = f"sha-256=:{base64.b64encode(digest).decode()}:"
    return response


@bp.get("/<int:position_id>/versions/<int:number>.pdf")
@login_required
def version_pdf(slug: str, position_id: int, number: int) -> Response:
    """The line-numbered draft: the same lines as the page with line numbers, the
    amendments' references and the disposition report (consensus.domain.lines)."""
    from weasyprint import HTML

    process = load_process(slug)
    position = load_position(process, position_id)
    version = load_version(position, number)
    html = render_template(
        "positions/version_pdf.html",
        process=process,
        position=position,
        version=version,
        numbered=drafting.numbered(version),
    )
    pdf = HTML(string=html, url_fetcher=_refuse_fetch).write_pdf(pdf_variant="pdf/ua-1")
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{process.slug}-{position.id}-v{version.number}.pdf"'
    )
    return response


@bp.get("/<int:position_id>/versions")
@login_required
def history(slug: str, position_id: int) -> str:
    process = load_process(slug)
    position = load_position(process, position_id)
    return render_template(
        "positions/history.html",
        process=process,
        position=position,
        can_manage=_can_manage(process),
        may_write=_may_write(process),
    )


def _may_write(process: Process) -> bool:
    return _can_manage(process) or bool(_acting(process, Action.EDIT_DRAFT))


@bp.route("/<int:position_id>/versions/new", methods=["GET", "POST"])
@login_required
def new_version(slug: str, position_id: int) -> str | Response | tuple[str, int]:
    process = load_process(slug)
    position = load_position(process, position_id)
    permissions.require(_may_write(process))
    latest = position.latest
    assert latest is not None
    form = VersionForm()
    options = [(o.id, o.name) for o in _acting(process, Action.EDIT_DRAFT)]
    if _can_manage(process):
        options.insert(0, (0, _("Facilitation")))
    form.organisation_id.choices = choices(options)
    if request.method == "GET":
        form.body.data = latest.body
    preview = None
    if form.validate_on_submit():
        organisation = _organisation(form.organisation_id.data)
        if request.form.get("action") == "preview":
            body = service.canonicalise(form.body.data or "")
            try:
                require_visible(body, field="body")  # the preview already says what is refused
            except DomainError as error:
                attach_error(form, error)  # a preview writes nothing: nothing to roll back
            else:
                blocks = service.split_blocks(body)
                previous = [(p.anchor, p.text) for p in latest.paragraphs]
                anchors = service.assign_anchors(blocks, previous)
                preview = {
                    "sha256": service.sha256_hex(body),
                    "changes": service.diff_blocks(
                        previous, list(zip(anchors, blocks, strict=True))
                    ),
                }
        else:
            created = run(
                service.create_version,
                position,
                process,
                actor=current_user,
                body=form.body.data or "",
                change_summary=form.change_summary.data or "",
                organisation=organisation,
                form=form,
                success=lambda version: _("Version %(n)d has been created.", n=version.number),
            )
            if created:
                return redirect(_version_url(process, position, created.value))
    status = 400 if form.errors else 200
    return render_template(
        "positions/version_form.html",
        form=form,
        process=process,
        position=position,
        latest=latest,
        preview=preview,
    ), status


@bp.post("/<int:position_id>/versions/<int:number>/pin")
@login_required
def pin(slug: str, position_id: int, number: int) -> Response:
    process = load_process(slug)
    permissions.require(_can_manage(process))
    position = load_position(process, position_id)
    version = load_version(position, number)
    form = PinForm(prefix="pin")
    form.round_id.choices = choices(
        (r.id, r.title) for r in process.rounds if r.state == RoundState.SCHEDULED
    )
    if not form.validate_on_submit():
        flash(_("Choose a scheduled round."), "error")
    else:
        round_ = load_round(process, form.round_id.data)
        run(
            service.pin_version,
            round_,
            version,
            actor=current_user,
            success=lambda _pinned: _(
                "\u201c%(round)s\u201d will be about version %(n)d.",
                round=round_.title,
                n=number,
            ),
        )
    return redirect(_version_url(process, position, version))


@bp.get("/<int:position_id>/diff")
@login_required
def diff(slug: str, position_id: int) -> str:
    """Any two versions, inline (word level) or side by side."""
    process = load_process(slug)
    # The outline names the versions; the ORM objects are loaded only to render the body.
    outline = load_outline(process, position_id)
    latest = outline.latest
    assert latest is not None
    new_number = request.args.get("to", type=int) or latest.number
    old_number = request.args.get("from", type=int) or max(new_number - 1, 1)
    old, new = outline.version(old_number), outline.version(new_number)
    view = "side" if request.args.get("view") == "side" else "inline"

    def body_context() -> dict[str, object]:
        position = load_position(process, position_id)
        return {
            "process": process,
            "position": position,
            "result": service.compare(
                load_version(position, old.number), load_version(position, new.number)
            ),
            "view": view,
        }

    # The same for every viewer; versions never change, the position's title may.
    body_html = diff_page.BODY.html(diff_page.DiffKey(old.id, new.id, view), body_context)
    return render_template(
        "positions/diff.html",
        process=process,
        position=outline,
        old=old,
        new=new,
        body_html=body_html,
    )


# --- Comments ---------------------------------------------------------------------------------


def _thread_response(
    process: Process,
    position: Position,
    version: Version,
    anchor: str | None,
    *,
    form: CommentForm | None = None,
    status: int = 200,
) -> tuple[str, int]:
    _, target = service.round_version(process, position)
    context = _thread_context(process, position, version, target)
    if form is not None:
        context["comment_form"] = form
    comments = service.load_comments([version.id], anchors=[anchor])  # the one thread shown
    context["threads"] = service.threads(comments)
    return render_template(
        "positions/_thread.html", anchor=anchor, error_anchor=anchor if form else None, **context
    ), status


@bp.post("/<int:position_id>/versions/<int:number>/comments")
@login_required
def comment_new(slug: str, position_id: int, number: int) -> str | Response | tuple[str, int]:
    process = load_process(slug)
    position = load_position(process, position_id)
    version = load_version(position, number)
    form = CommentForm()
    voices = _voices(process, Action.COMMENT)
    if not voices:
        _refuse_late(process, position, version, Action.COMMENT, _("Your comment was not posted."))
        abort(403)
    form.organisation_id.choices = choices(voices)
    anchor = form.paragraph_anchor.data or None
    parent = (
        load_comment(position, int(form.parent_id.data))
        if (form.parent_id.data or "").isdigit()
        else None
    )
    if parent is not None:
        anchor = parent.paragraph_anchor
    if form.validate_on_submit():
        posted = run(
            service.add_comment,
            version,
            process,
            actor=current_user,
            body=form.body.data or "",
            organisation=_organisation(form.organisation_id.data),
            paragraph_anchor=anchor,
            parent=parent,
            form=form,
            success=None if _partial() else _("Your comment has been posted."),
        )
        if posted:
            if _partial():
                return _thread_response(process, position, version, anchor)
            return redirect(_comment_url(process, position, version, posted.value))
    if _partial():
        return _thread_response(process, position, version, anchor, form=form, status=422)
    return render_template(
        "positions/comment_form.html",
        form=form,
        process=process,
        position=position,
        version=version,
        parent=parent,
        anchor=anchor,
    ), 400


@bp.get("/<int:position_id>/comments/<int:comment_id>/reply")
@login_required
def comment_reply(slug: str, position_id: int, comment_id: int) -> str:
    """The reply form: a page of its own, or (htmx) just the form under the comment."""
    process = load_process(slug)
    position = load_position(process, position_id)
    parent = load_comment(position, comment_id)
    version = next(v for v in position.versions if v.id == parent.version_id)
    form = _comment_form(process)
    if form is None:
        _refuse_late(process, position, version, Action.COMMENT, _("You can no longer reply."))
        abort(403)
    form.parent_id.data = str(parent.id)
    template = "positions/_comment_form.html" if _partial() else "positions/comment_form.html"
    return render_template(
        template,
        form=form,
        process=process,
        position=position,
        version=version,
        parent=parent,
        anchor=parent.paragraph_anchor,
        form_id=f"reply-{parent.id}",
    )


def _comment_node(position: Position, comment: Comment) -> service.Thread:
    grouped = service.threads(
        service.load_comments([comment.version_id], anchors=[comment.paragraph_anchor])
    )
    stack = [t for ts in grouped.values() for t in ts]
    while stack:
        node = stack.pop()
        if node.comment.id == comment.id:
            return node
        stack.extend(node.replies)
    return service.Thread(comment)


def _comment_fragment(process: Process, position: Position, comment: Comment) -> str:
    version = next(v for v in position.versions if v.id == comment.version_id)
    _, target = service.round_version(process, position)
    return render_template(
        "positions/_comment.html",
        node=_comment_node(position, comment),
        **_thread_context(process, position, version, target),
    )


@bp.route("/<int:position_id>/comments/<int:comment_id>/edit", methods=["GET", "POST"])
@login_required
def comment_edit(slug: str, position_id: int, comment_id: int) -> str | Response | tuple[str, int]:
    process = load_process(slug)
    position = load_position(process, position_id)
    comment = load_comment(position, comment_id)
    version = next(v for v in position.versions if v.id == comment.version_id)
    if (
        not permissions.can_edit_comment(current_user, comment)
        and comment.author_id == current_user.id
        and not comment.is_deleted
    ):
        # The author's edit window passed while the form was open: not a ban, say so.
        abort(
            round_closed_page(
                _("The time to change this comment has passed. Your change was not saved.")
                if request.method == "POST"
                else _("The time to change this comment has passed."),
                _comment_url(process, position, version, comment),
                title=_("Too late to change this comment"),
            )
        )
    permissions.require(permissions.can_edit_comment(current_user, comment))
    form = CommentEditForm(obj=comment)
    if form.validate_on_submit() and run(
        service.edit_comment,
        comment,
        actor=current_user,
        body=form.body.data or "",
        form=form,
        success=None if _partial() else _("Your comment has been changed."),
    ):
        if _partial():
            return _comment_fragment(process, position, comment)
        return redirect(_comment_url(process, position, version, comment))
    template = "positions/_comment_edit.html" if _partial() else "positions/comment_edit.html"
    status = 422 if form.errors and _partial() else 400 if form.errors else 200
    return render_template(
        template, form=form, process=process, position=position, version=version, comment=comment
    ), status


@bp.post("/<int:position_id>/comments/<int:comment_id>/remove")
@login_required
def comment_remove(slug: str, position_id: int, comment_id: int) -> str | Response:
    process = load_process(slug)
    position = load_position(process, position_id)
    comment = load_comment(position, comment_id)
    permissions.require(permissions.can_remove_comment(current_user, comment, process))
    if not EmptyForm().validate_on_submit():
        abort(400)
    version = next(v for v in position.versions if v.id == comment.version_id)
    if (
        run(
            service.remove_comment,
            comment,
            process,
            actor=current_user,
            success=None if _partial() else _("The comment has been removed."),
        )
        and _partial()
    ):
        return _comment_fragment(process, position, comment)
    return redirect(_comment_url(process, position, version, comment))


@bp.get("/<int:position_id>/comments/<int:comment_id>/history")
@login_required
def comment_history(slug: str, position_id: int, comment_id: int) -> str:
    process = load_process(slug)
    position = load_position(process, position_id)
    comment = load_comment(position, comment_id)
    revisions = list(
        db.session.execute(
            select(CommentRevision)
            .where(CommentRevision.comment_id == comment.id)
            .order_by(CommentRevision.id)
        ).scalars()
    )
    version = next(v for v in position.versions if v.id == comment.version_id)
    # The text of a removed comment stays in the record, not on the page.
    shown = [r for r in revisions if r.reason == "edit"]
    return render_template(
        "positions/comment_history.html",
        process=process,
        position=position,
        version=version,
        comment=comment,
        revisions=shown,
    )


# --- Amendments -------------------------------------------------------------------------------


@bp.get("/<int:position_id>/amendments")
@login_required
def amendments(slug: str, position_id: int) -> str:
    process = load_process(slug)
    position = load_position(process, position_id)
    state = request.args.get("state", "")
    can_manage = _can_manage(process)

    def body_context() -> dict[str, object]:
        items = service.load_amendments(position.id)
        counts = {s.value: 0 for s in AmendmentState}
        for item in items:
            counts[item.state.value] += 1
        if state in counts:
            items = [a for a in items if a.state.value == state]
        ready = [a for a in items if a.is_accepted and a.applied_in_version_id is None]
        _load_paragraphs(position.versions)
        return {
            "process": process,
            "position": position,
            "amendments": items,
            "counts": counts,
            "state": state,
            "ready": ready,
            "ordinals": {
                (v.id, p.anchor): p.ordinal for v in position.versions for p in v.paragraphs
            },
            "numbers": {v.id: v.number for v in position.versions},
            "refs": drafting.References(position.versions),
            "open_count": counts[AmendmentState.PENDING.value] + len(ready),
            "can_manage": can_manage,
        }

    body_html = amendments_page.BODY.html(
        amendments_page.AmendmentsKey(position.id, state, can_manage), body_context
    )
    return render_template(
        "positions/amendments.html", process=process, position=position, body_html=body_html
    )


def _load_paragraphs(versions: list[Version]) -> None:
    """Every version's paragraphs in one statement (not one per version)."""
    pending = [v for v in versions if "paragraphs" not in inspect(v).dict]
    if not pending:
        return
    found: dict[int, list[VersionParagraph]] = {v.id: [] for v in pending}
    for paragraph in db.session.scalars(
        select(VersionParagraph)
        .where(VersionParagraph.version_id.in_(list(found)))
        .order_by(VersionParagraph.version_id, VersionParagraph.ordinal)
    ):
        found[paragraph.version_id].append(paragraph)
    for version in pending:
        set_committed_value(version, "paragraphs", found[version.id])


def _paragraph_choices(version: Version) -> list[tuple[str, str]]:
    def label(p: object) -> str:
        text = " ".join(p.text.split())  # type: ignore[attr-defined]
        short = text if len(text) <= 70 else text[:67] + "…"
        return f"{p.ordinal}. {short}"  # type: ignore[attr-defined]

    return [(p.anchor, label(p)) for p in version.paragraphs]


@bp.route("/<int:position_id>/versions/<int:number>/amendments/new", methods=["GET", "POST"])
@login_required
def amendment_new(slug: str, position_id: int, number: int) -> str | Response | tuple[str, int]:
    process = load_process(slug)
    position = load_position(process, position_id)
    version = load_version(position, number)
    organisations = (
        _acting(process, Action.PROPOSE_AMENDMENT)
        if individual_contributions_allowed(process)
        else []
    )
    if not organisations:
        _refuse_late(
            process,
            position,
            version,
            Action.PROPOSE_AMENDMENT,
            _("Your amendment was not submitted.")
            if request.method == "POST"
            else _("Amendments can no longer be proposed."),
        )
        decision = permissions.gate(current_user, Action.PROPOSE_AMENDMENT, process, None)
        flash(decision.reason or _("You may not propose amendments now."), "error")
        return redirect(_version_url(process, position, version))
    form = AmendmentForm()
    form.organisation_id.choices = choices((o.id, o.name) for o in organisations)
    paragraph_choices = _paragraph_choices(version)
    form.paragraph.choices = choices(paragraph_choices)
    form.end_paragraph.choices = choices([("", _("Only this paragraph")), *paragraph_choices])
    if request.method == "GET":
        anchor = request.args.get("anchor", "")
        paragraph = version.paragraph(anchor) if anchor else None
        if request.args.get("kind") == "insert":
            form.kind.data = "insert"
        if paragraph is not None:
            form.paragraph.data = paragraph.anchor
            if form.kind.data != "insert":
                form.proposed_text.data = paragraph.text
    if form.validate_on_submit():
        insert = form.kind.data == "insert"
        proposed = run(
            service.propose_amendment,
            version,
            process,
            actor=current_user,
            organisation=_organisation(form.organisation_id.data),
            proposed_text=form.proposed_text.data or "",
            rationale=form.rationale.data or "",
            paragraph_anchor=None if insert else form.paragraph.data,
            end_anchor=None if insert else (form.end_paragraph.data or None),
            insert_after_anchor=form.paragraph.data if insert else None,
            form=form,
            success=lambda amendment: _("Amendment %(n)d has been submitted.", n=amendment.number),
        )
        if proposed:
            return redirect(
                url_for(
                    "positions.amendment",
                    slug=slug,
                    position_id=position_id,
                    number=proposed.value.number,
                )
            )
    status = 400 if form.errors else 200
    return render_template(
        "positions/amendment_form.html",
        form=form,
        process=process,
        position=position,
        version=version,
    ), status


def _amendment_page(
    process: Process,
    position: Position,
    amendment: Amendment,
    *,
    decision_form: DecisionForm | None = None,
    status: int = 200,
) -> tuple[str, int]:
    version = next(v for v in position.versions if v.id == amendment.version_id)
    latest = position.latest
    assert latest is not None
    conflict = None
    if amendment.is_accepted and amendment.applied_in_version_id is None:
        conflict = service.find_conflict(amendment, latest)
    can_decide = (
        _can_manage(process)
        and amendment.state != AmendmentState.WITHDRAWN
        and amendment.applied_in_version_id is None
    )
    if can_decide and decision_form is None:
        decision_form = DecisionForm(formdata=None)
        if amendment.state != AmendmentState.PENDING:
            decision_form.decision.data = amendment.state.value
            decision_form.reason.data = amendment.decision_reason
            if amendment.state == AmendmentState.ACCEPTED_IN_PART:
                decision_form.adopted_text.data = amendment.adopted_text
    applied = next((v for v in position.versions if v.id == amendment.applied_in_version_id), None)
    target = amendment.paragraph_anchor or amendment.insert_after_anchor or ""
    paragraph = version.paragraph(target)
    refs = drafting.References(position.versions)
    return render_template(
        "positions/amendment.html",
        process=process,
        position=position,
        version=version,
        amendment=amendment,
        paragraph=paragraph,
        end_paragraph=version.paragraph(amendment.end_anchor) if amendment.end_anchor else None,
        proposal=service.word_diff(amendment.original_text, amendment.proposed_text),
        adopted=service.word_diff(amendment.original_text, amendment.adopted_text)
        if amendment.state == AmendmentState.ACCEPTED_IN_PART and amendment.adopted_text is not None
        else None,
        conflict=conflict,
        applied=applied,
        refs=refs,
        latest_ref=refs.in_version(amendment, latest.id),
        from_organisation=amendment.id in drafting.organisation_contribution_ids(position.id),
        ordinals={(v.id, p.anchor): p.ordinal for v in position.versions for p in v.paragraphs},
        decision_form=decision_form if can_decide else None,
        may_withdraw=permissions.may_withdraw(current_user, amendment),
        action_form=EmptyForm(),
        can_manage=_can_manage(process),
    ), status


@bp.get("/<int:position_id>/amendments/<int:number>")
@login_required
def amendment(slug: str, position_id: int, number: int) -> tuple[str, int]:
    process = load_process(slug)
    position = load_position(process, position_id)
    return _amendment_page(process, position, load_amendment(position, number))


@bp.post("/<int:position_id>/amendments/<int:number>/decide")
@login_required
def amendment_decide(slug: str, position_id: int, number: int) -> Response | tuple[str, int]:
    process = load_process(slug)
    permissions.require(_can_manage(process))
    position = load_position(process, position_id)
    amendment = load_amendment(position, number)
    form = DecisionForm()
    if form.validate_on_submit():
        if run(
            service.decide_amendment,
            amendment,
            process,
            actor=current_user,
            decision=AmendmentState(form.decision.data),
            reason=form.reason.data or "",
            adopted_text=form.adopted_text.data,
            form=form,
            success=lambda _decided: _(
                "Amendment %(n)d: %(decision)s.",
                n=number,
                decision=STATE_LABELS[amendment.state],
            ),
        ):
            return redirect(
                url_for("positions.amendment", slug=slug, position_id=position_id, number=number)
            )
        amendment = load_amendment(position, number)
    return _amendment_page(process, position, amendment, decision_form=form, status=400)


@bp.post("/<int:position_id>/amendments/<int:number>/withdraw")
@login_required
def amendment_withdraw(slug: str, position_id: int, number: int) -> Response:
    process = load_process(slug)
    position = load_position(process, position_id)
    amendment = load_amendment(position, number)
    permissions.require(permissions.may_withdraw(current_user, amendment))
    if not EmptyForm().validate_on_submit():
        abort(400)
    run(
        service.withdraw_amendment,
        amendment,
        actor=current_user,
        success=_("Amendment %(n)d has been withdrawn.", n=number),
    )
    return redirect(
        url_for("positions.amendment", slug=slug, position_id=position.id, number=number)
    )


@bp.route("/<int:position_id>/amendments/<int:number>/rebase", methods=["GET", "POST"])
@login_required
def amendment_rebase(slug: str, position_id: int, number: int) -> str | Response | tuple[str, int]:
    process = load_process(slug)
    permissions.require(_can_manage(process))
    position = load_position(process, position_id)
    amendment = load_amendment(position, number)
    if not amendment.is_accepted or amendment.applied_in_version_id is not None:
        abort(404)
    latest = position.latest
    assert latest is not None
    form = RebaseForm()
    form.paragraph.choices = choices(_paragraph_choices(latest))
    if request.method == "GET":
        target = amendment.paragraph_anchor or amendment.insert_after_anchor
        form.paragraph.data = (
            target if latest.paragraph(target or "") else latest.paragraphs[0].anchor
        )
        form.adopted_text.data = amendment.adopted_text
    if form.validate_on_submit() and run(
        service.rebase_amendment,
        amendment,
        process,
        actor=current_user,
        anchor=form.paragraph.data or "",
        adopted_text=form.adopted_text.data or "",
        form=form,
        success=_("Amendment %(n)d now applies to version %(v)d.", n=number, v=latest.number),
    ):
        return redirect(url_for("positions.apply", slug=slug, position_id=position_id))
    conflict = service.find_conflict(amendment, latest)
    status = 400 if form.errors else 200
    return render_template(
        "positions/rebase.html",
        form=form,
        process=process,
        position=position,
        amendment=amendment,
        latest=latest,
        conflict=conflict,
    ), status


@bp.route("/<int:position_id>/apply", methods=["GET", "POST"])
@login_required
def apply(slug: str, position_id: int) -> str | Response | tuple[str, int]:
    """Preview the next version made of the accepted amendments, then create it."""
    process = load_process(slug)
    permissions.require(_can_manage(process))
    position = load_position(process, position_id)
    plan = service.plan_application(position, service.load_amendments(position.id))
    form = ApplyForm()
    if request.method == "GET":
        form.preview_sha256.data = plan.sha256
    elif form.validate_on_submit():
        applied = run(
            service.apply_amendments,
            position,
            process,
            actor=current_user,
            change_summary=form.change_summary.data or "",
            expected_sha256=form.preview_sha256.data or "",
            form=form,
            success=lambda version: _(
                "Version %(n)d has been created from the amendments.", n=version.number
            ),
        )
        if applied:
            return redirect(_version_url(process, position, applied.value))
        plan = service.plan_application(position, service.load_amendments(position.id))
        form.preview_sha256.data = plan.sha256
    ordinals = {(v.id, p.anchor): p.ordinal for v in position.versions for p in v.paragraphs}
    status = 400 if form.errors else 200
    return render_template(
        "positions/apply.html",
        form=form,
        process=process,
        position=position,
        plan=plan,
        ordinals=ordinals,
        refs=drafting.References(position.versions),
        plan_lines=drafting.DiffLines(
            [(p.anchor, p.text) for p in plan.base.paragraphs], plan.paragraphs
        ),
    ), status


# --- Consolidation ------------------------------------------------------------------------------


def _group_form(group: drafting.AmendmentGroup, formdata: object = None) -> GroupDecisionForm:
    form = GroupDecisionForm(formdata=formdata, prefix=f"g{group.key}")
    form.decision.choices = choices(
        [
            *(
                (f"adopt:{a.number}", _("Adopt amendment %(n)d", n=a.number))
                for a in group.amendments
            ),
            ("reject", _("Reject all") if group.overlapping else _("Do not adopt")),
            ("compromise", _("Adopt a compromise text of my own")),
        ]
    )
    if not group.overlapping:
        # One amendment: the one reason field serves every decision.
        form.reason.label.text = _("Reason for the decision")
    if formdata is None:
        form.numbers.data = ",".join(str(n) for n in group.numbers)
        form.compromise_text.data = (
            group.consolidation.compromise_text if group.consolidation else group.original_text
        )
    return form


@bp.route("/<int:position_id>/consolidate", methods=["GET", "POST"])
@login_required
def consolidate(slug: str, position_id: int) -> str | Response | tuple[str, int]:
    """The facilitator's consolidation page: open amendments grouped where they overlap,
    each group decided at once; then every decision applied in one step (positions.apply,
    with its preview and conflict check)."""
    process = load_process(slug)
    permissions.require(_can_manage(process))
    position = load_position(process, position_id)
    groups = drafting.amendment_groups(position)
    forms = {g.key: _group_form(g) for g in groups}
    status = 200
    if request.method == "POST":
        key = request.form.get("group", "")
        group = next((g for g in groups if g.key == key), None)
        if group is None:
            flash(
                _("These amendments are no longer one open group. Check the page again."), "error"
            )
            return redirect(url_for("positions.consolidate", slug=slug, position_id=position_id))
        form = forms[key] = _group_form(group, request.form)
        if form.validate_on_submit():
            choice = form.decision.data or ""
            decision, _sep, chosen = choice.partition(":")
            if run(
                drafting.decide_group,
                position,
                process,
                actor=current_user,
                numbers=group.numbers,
                decision=decision,
                chosen=int(chosen) if chosen.isdigit() else None,
                reason=form.reason.data or "",
                shared_reason=form.shared_reason.data or "",
                compromise_text=form.compromise_text.data or "",
                form=form,
                success=_(
                    "The decision on amendments %(numbers)s has been recorded.",
                    numbers=", ".join(str(n) for n in group.numbers),
                ),
            ):
                return redirect(
                    url_for("positions.consolidate", slug=slug, position_id=position_id)
                )
        status = 400
    refs = drafting.References(position.versions)
    plan = service.plan_application(position, service.load_amendments(position.id))
    return render_template(
        "positions/consolidate.html",
        process=process,
        position=position,
        groups=groups,
        forms=forms,
        refs=refs,
        plan=plan,
        word_diff=service.word_diff,
    ), status


# --- Organisation contributions -----------------------------------------------------------------


def _spaces(process: Process) -> list[Organisation]:
    """The participating organisations whose contribution space the viewer may open."""
    return [
        m.organisation
        for m in permissions.valid_memberships(current_user)
        if process.participates(m.organisation_id)
        and drafting_rules.may_see_space(current_user, m.organisation)
    ]


def _space_organisation(process: Process, organisation_id: int) -> Organisation:
    """The organisation of a space: 404 for anyone but its own officials and representatives
    (a space does not even show that it exists)."""
    organisation = db.session.get(Organisation, organisation_id)
    if (
        organisation is None
        or not process.participates(organisation.id)
        or not drafting_rules.may_see_space(current_user, organisation)
    ):
        abort(404)
    return organisation


def load_contribution(position: Position, contribution_id: int) -> Contribution:
    contribution = db.session.get(Contribution, contribution_id)
    if (
        contribution is None
        or contribution.position_id != position.id
        or not drafting_rules.may_see_space(current_user, contribution.organisation)
    ):
        abort(404)
    return contribution


def _contribution_paragraphs(version: Version) -> list[tuple[str, str]]:
    return _paragraph_choices(version)


@bp.route(
    "/<int:position_id>/organisations/<int:organisation_id>/contributions",
    methods=["GET", "POST"],
)
@login_required
def space(slug: str, position_id: int, organisation_id: int) -> str | Response | tuple[str, int]:
    """The organisation's own space: its contributions in preparation, and a new one."""
    process = load_process(slug)
    organisation = _space_organisation(process, organisation_id)
    position = load_position(process, position_id)
    _round, target = service.round_version(process, position)
    form = ContributionForm()
    paragraphs = _paragraph_choices(target) if target is not None else []
    form.paragraph.choices = choices([("", _("The whole text (comments only)")), *paragraphs])
    form.end_paragraph.choices = choices([("", _("Only this paragraph")), *paragraphs])
    if target is not None and form.validate_on_submit():
        kind = form.kind.data or ""
        anchor = form.paragraph.data or None
        made = run(
            drafting.prepare_contribution,
            target,
            process,
            actor=current_user,
            organisation=organisation,
            kind="comment" if kind == "comment" else "amendment",
            text=form.text.data or "",
            rationale=form.rationale.data or "",
            paragraph_anchor=None if kind == "insert" else anchor,
            end_anchor=(form.end_paragraph.data or None) if kind == "replace" else None,
            insert_after_anchor=anchor if kind == "insert" else None,
            form=form,
            success=_("The draft is in your organisation's space."),
        )
        if made:
            return redirect(
                url_for(
                    "positions.contribution",
                    slug=slug,
                    position_id=position_id,
                    contribution_id=made.value.id,
                )
            )
    status = 400 if form.errors else 200
    return render_template(
        "positions/space.html",
        process=process,
        position=position,
        organisation=organisation,
        target=target,
        form=form,
        may_prepare=target is not None
        and bool(
            drafting_rules.may_prepare(
                current_user, process, organisation, ContributionKind.COMMENT
            )
        ),
        contributions=drafting.contributions_of(position.id, organisation.id),
        kinds=CONTRIBUTION_KINDS,
        individual=individual_contributions_allowed(process),
    ), status


def _contribution_page(
    process: Process,
    position: Position,
    contribution: Contribution,
    *,
    edit_form: ContributionEditForm | None = None,
    note_form: NoteForm | None = None,
    status: int = 200,
) -> tuple[str, int]:
    version = next(v for v in position.versions if v.id == contribution.version_id)
    original = ""
    if contribution.kind == ContributionKind.AMENDMENT and contribution.paragraph_anchor:
        try:
            original = "\n\n".join(
                p.text
                for p in service._range(
                    version, contribution.paragraph_anchor, contribution.end_anchor
                )
            )
        except DomainError:
            original = ""
    if edit_form is None:
        edit_form = ContributionEditForm(formdata=None)
        edit_form.text.data = contribution.text
        edit_form.rationale.data = contribution.rationale
    return render_template(
        "positions/contribution.html",
        process=process,
        position=position,
        version=version,
        contribution=contribution,
        ordinals={(version.id, p.anchor): p.ordinal for p in version.paragraphs},
        diff=service.word_diff(original, contribution.text)
        if original or contribution.kind.value == "amendment"
        else None,
        edit_form=edit_form,
        note_form=note_form or NoteForm(formdata=None),
        action_form=EmptyForm(),
        may_edit=contribution.state.value in ("draft", "cleared")
        and bool(
            drafting_rules.may_prepare(
                current_user, process, contribution.organisation, contribution.kind
            )
        ),
        clear_gate=drafting_rules.may_clear(current_user, contribution, process),
        submit_gate=drafting_rules.may_submit(current_user, contribution, process),
    ), status


def _back_to(slug: str, position_id: int, contribution_id: int) -> Response:
    return redirect(
        url_for(
            "positions.contribution",
            slug=slug,
            position_id=position_id,
            contribution_id=contribution_id,
        )
    )


@bp.get("/<int:position_id>/contributions/<int:contribution_id>")
@login_required
def contribution(slug: str, position_id: int, contribution_id: int) -> tuple[str, int]:
    process = load_process(slug)
    position = load_position(process, position_id)
    item = load_contribution(position, contribution_id)
    return _contribution_page(process, position, item)


@bp.post("/<int:position_id>/contributions/<int:contribution_id>/edit")
@login_required
def contribution_edit(
    slug: str, position_id: int, contribution_id: int
) -> Response | tuple[str, int]:
    process = load_process(slug)
    position = load_position(process, position_id)
    item = load_contribution(position, contribution_id)
    form = ContributionEditForm()
    if form.validate_on_submit() and run(
        drafting.edit_contribution,
        item,
        process,
        actor=current_user,
        text=form.text.data or "",
        rationale=form.rationale.data or "",
        form=form,
        success=_("The draft has been saved."),
    ):
        return _back_to(slug, position_id, contribution_id)
    return _contribution_page(process, position, item, edit_form=form, status=400)


@bp.post("/<int:position_id>/contributions/<int:contribution_id>/notes")
@login_required
def contribution_note(
    slug: str, position_id: int, contribution_id: int
) -> Response | tuple[str, int]:
    process = load_process(slug)
    position = load_position(process, position_id)
    item = load_contribution(position, contribution_id)
    form = NoteForm()
    if form.validate_on_submit() and run(
        drafting.add_note, item, process, actor=current_user, body=form.body.data or "", form=form
    ):
        return _back_to(slug, position_id, contribution_id)
    return _contribution_page(process, position, item, note_form=form, status=400)


@bp.post(
    "/<int:position_id>/contributions/<int:contribution_id>/<any(clear, submit, discard):step>"
)
@login_required
def contribution_step(slug: str, position_id: int, contribution_id: int, step: str) -> Response:
    """Clear (an officer of the organisation), submit once (as the organisation's), or
    discard a contribution."""
    process = load_process(slug)
    position = load_position(process, position_id)
    item = load_contribution(position, contribution_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    use_case, message = {
        "clear": (drafting.clear_contribution, _("The contribution has been cleared.")),
        "submit": (
            drafting.submit_contribution,
            _(
                "The contribution has been submitted on behalf of %(org)s.",
                org=item.organisation.name,
            ),
        ),
        "discard": (drafting.discard_contribution, _("The draft has been discarded.")),
    }[step]
    run(use_case, item, process, actor=current_user, success=message)
    return _back_to(slug, position_id, contribution_id)


@bp.post("/settings")
@login_required
def drafting_settings(slug: str) -> Response:
    """A facilitator decides whether individual contributions are allowed in this process."""
    process = load_process(slug)
    permissions.require(_can_manage(process))
    form = DraftingSettingsForm()
    if form.validate_on_submit():
        run(
            drafting.set_individual_contributions,
            process,
            actor=current_user,
            allowed=bool(form.individual_contributions.data),
            success=_("The drafting settings have been saved."),
        )
    return redirect(url_for("positions.index", slug=slug))


# --- Disposition report -----------------------------------------------------------------------


def _report(slug: str, round_id: int) -> service.DispositionReport:
    process = load_process(slug)
    round_ = load_round(process, round_id)
    if round_.type not in {RoundType.CONSULTATION, RoundType.DRAFTING}:
        abort(404)
    return service.disposition(process, round_)


def _state_texts() -> dict[str, str]:
    return {state.value: str(label) for state, label in STATE_LABELS.items()}


def _unpublished(report: service.DispositionReport) -> bool:
    """Not yet for this reader (permissions.drafting.may_read_disposition)."""
    phase = drafting.review_phase(report.review)
    return not drafting_rules.may_read_disposition(current_user, report.process, phase)


@dataclass(frozen=True)
class _ReportHead:
    """What the page around the report's body shows (the body itself is a cached part:
    consensus.web.pages.disposition), read without gathering the whole report."""

    process: Process
    round: Round
    position: Position | None
    version: Version | None
    review: DispositionReview | None


@bp.get("/rounds/<int:round_id>/disposition")
@login_required
def disposition(slug: str, round_id: int) -> str:
    process = load_process(slug)
    round_ = load_round(process, round_id)
    if round_.type not in {RoundType.CONSULTATION, RoundType.DRAFTING}:
        abort(404)
    review = drafting.review_of(round_.id)
    version = (
        db.session.get(
            Version,
            round_.version_id,
            options=[lazyload(Version.paragraphs), lazyload(Version.created_by)],
        )
        if round_.version_id
        else None
    )
    # The position by its own statement, never its versions: through `version.position` their
    # selectin ran or not with what earlier requests had left in the identity map.
    position = (
        db.session.execute(
            select(Position)
            .where(Position.id == version.position_id)
            .options(lazyload(Position.versions))
        ).scalar_one()
        if version
        else None
    )
    head = _ReportHead(process, round_, position, version, review)
    phase = drafting.review_phase(review)
    unpublished = not drafting_rules.may_read_disposition(current_user, process, phase)
    send_form = None
    if _can_manage(process) and phase == "none" and round_.state == RoundState.CLOSED:
        send_form = SendDispositionForm(formdata=None)
    contested = [item for item in (review.items if review else []) if item.response == "contest"]
    # Asked also when nothing is contested (an empty IN): the page runs the same statements
    # whatever the organisations answered (the query budgets compare worlds).
    numbers: dict[int, int] = dict(
        db.session.execute(
            select(Amendment.id, Amendment.number).where(
                Amendment.id.in_([item.amendment_id for item in contested])
            )
        ).all()
    )
    body = None
    if not unpublished:
        body = disposition_page.BODY.part(
            disposition_page.DispositionKey(round_.id),
            lambda: {"report": service.disposition(process, round_)},
        )
    return render_template(
        "positions/disposition.html",
        report=head,
        body=body,
        process=process,
        phase=phase,
        unpublished=unpublished,
        send_form=send_form,
        spaces=_spaces(process),
        contested=contested,
        feedback_labels=FEEDBACK_CHOICES,
        numbers=numbers,
    )


@bp.post("/rounds/<int:round_id>/disposition/send")
@login_required
def disposition_send(slug: str, round_id: int) -> Response | str | tuple[str, int]:
    """The facilitator sends the proposed disposition to the contributing organisations."""
    process = load_process(slug)
    permissions.require(_can_manage(process))
    round_ = load_round(process, round_id)
    form = SendDispositionForm()
    if form.validate_on_submit() and run(
        drafting.send_disposition,
        process,
        round_,
        actor=current_user,
        respond_by=from_local_input(form.respond_by.data),  # type: ignore[arg-type]
        publish_at=from_local_input(form.publish_at.data),  # type: ignore[arg-type]
        form=form,
        success=_("The proposed disposition has been sent to the organisations."),
    ):
        return redirect(url_for("positions.disposition", slug=slug, round_id=round_id))
    for errors in form.errors.values():
        for error in errors:
            flash(str(error), "error")
    return redirect(url_for("positions.disposition", slug=slug, round_id=round_id))


@bp.route(
    "/rounds/<int:round_id>/disposition/organisations/<int:organisation_id>",
    methods=["GET", "POST"],
)
@login_required
def disposition_feedback(
    slug: str, round_id: int, organisation_id: int
) -> str | Response | tuple[str, int]:
    """The proposed decisions on one organisation's amendments, and its answers: its own
    officials and representatives only (others 404)."""
    process = load_process(slug)
    organisation = _space_organisation(process, organisation_id)
    round_ = load_round(process, round_id)
    review = drafting.review_of(round_.id)
    if review is None:
        abort(404)
    items = [i for i in review.items if i.organisation_id == organisation.id]
    forms = {}
    for item in items:
        form = FeedbackForm(formdata=None, prefix=f"f{item.id}")
        form.response.data = item.response.value if item.response else None
        form.comment.data = item.comment
        forms[item.id] = form
    status = 200
    if request.method == "POST":
        item_id = request.form.get("item", "")
        item = next((i for i in items if str(i.id) == item_id), None)
        if item is None:
            abort(404)
        form = forms[item.id] = FeedbackForm(prefix=f"f{item.id}")
        if form.validate_on_submit() and run(
            drafting.respond_to_disposition,
            item,
            process,
            actor=current_user,
            response=form.response.data or "",
            comment=form.comment.data or "",
            form=form,
            success=_("Your organisation's answer has been recorded."),
        ):
            return redirect(request.path)
        status = 400
    amendments = {
        a.id: a
        for a in db.session.execute(
            select(Amendment).where(Amendment.id.in_([i.amendment_id for i in items]))
        ).scalars()
    }
    return render_template(
        "positions/disposition_feedback.html",
        process=process,
        round=round_,
        organisation=organisation,
        review=review,
        phase=drafting.review_phase(review),
        items=items,
        amendments=amendments,
        forms=forms,
        feedback_labels=FEEDBACK_CHOICES,
    ), status


def _filename(report: service.DispositionReport, extension: str) -> str:
    return f"verwerkingsnota-{report.process.slug}-ronde-{report.round.sequence}.{extension}"


@bp.get("/rounds/<int:round_id>/disposition.csv")
@login_required
def disposition_csv(slug: str, round_id: int) -> Response:
    report = _report(slug, round_id)
    if _unpublished(report):
        abort(404)
    body = service.disposition_csv(report, _state_texts())
    response = Response(body.encode("utf-8"), mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{_filename(report, "csv")}"'
    return response


def _refuse_fetch(url: str, *args: object, **kwargs: object) -> dict[str, object]:
    """The PDF is made from our own HTML only; WeasyPrint may fetch nothing."""
    raise ValueError(f"refused to fetch {url}")


@bp.get("/rounds/<int:round_id>/disposition.pdf")
@login_required
def disposition_pdf(slug: str, round_id: int) -> Response:
    from weasyprint import HTML

    report = _report(slug, round_id)
    if _unpublished(report):
        abort(404)
    html = render_template("positions/disposition_pdf.html", report=report, process=report.process)
    pdf = HTML(string=html, url_fetcher=_refuse_fetch).write_pdf(pdf_variant="pdf/ua-1")
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{_filename(report, "pdf")}"'
    return response


@bp.app_context_processor
def process_page_helpers() -> dict[str, object]:
    """For the includes on the process and round pages (templates/positions/_*.html)."""

    def positions_of(process: Process) -> list[Position]:
        # Only the list with each latest version's number and hash: no texts, paragraphs
        # or authors.
        return list(
            db.session.execute(
                select(Position)
                .where(Position.process_id == process.id)
                .order_by(Position.id)
                .options(
                    selectinload(Position.versions).options(
                        defer(Version.body),
                        lazyload(Version.paragraphs),
                        lazyload(Version.created_by),
                    )
                )
            ).scalars()
        )

    def round_version_of(round_: object) -> Version | None:
        version_id = getattr(round_, "version_id", None)
        return db.session.get(Version, version_id) if version_id else None

    return {"positions_of": positions_of, "round_version_of": round_version_of}


@bp.app_template_filter("format_letter_date")
def format_letter_date(value: date) -> str:
    """A letter's date as written in a letter: "28 november 2026"."""
    return format_day(value, "long")
