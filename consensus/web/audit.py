"""The audit trail on the web: administrators see everything, members see their
organisation's events (each downloadable with its inclusion proof, as a receipt), and the
public sees only signed checkpoints and how to check them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_sqlalchemy.pagination import SelectPagination
from flask_wtf import FlaskForm
from sqlalchemy import Select, and_, func, or_, select
from wtforms import DateField, SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from consensus import permissions
from consensus.audit import checkpoints
from consensus.domain.timeutil import end_of_day, start_of_day
from consensus.extensions import db, login_manager
from consensus.models import AuditEvent, Checkpoint, Organisation, User
from consensus.resources import resource_path
from consensus.web import shared_cache
from consensus.web.loaders import load_organisation
from consensus.web.pages import audit as audit_pages

bp = Blueprint("audit", __name__)
PAGE_SIZE = 50
PUBLIC_CHECKPOINTS = 20
VERIFIER = resource_path("tools") / "verify_audit.py"

ACTION_LABELS = {
    "user.created": _l("Person added"),
    "user.updated": _l("Person changed"),
    "user.roles_changed": _l("Capabilities changed"),
    "user.logged_in": _l("Logged in"),
    "user.login_failed": _l("Login failed"),
    "user.logged_out": _l("Logged out"),
    "user.other_sessions_ended": _l("Other sessions ended"),
    "user.password_changed": _l("Password changed"),
    "user.password_reset_requested": _l("Password reset requested"),
    "user.password_reset": _l("Password reset"),
    "user.locale_changed": _l("Language changed"),
    "user.calendar_token_reset": _l("Calendar link renewed"),
    "user.totp_enabled": _l("Two-factor authentication switched on"),
    "user.totp_disabled": _l("Two-factor authentication switched off"),
    "user.recovery_codes_regenerated": _l("New recovery codes made"),
    "user.recovery_code_used": _l("Recovery code used"),
    "organisation.created": _l("Organisation added"),
    "organisation.updated": _l("Organisation changed"),
    "membership.created": _l("Membership added"),
    "membership.updated": _l("Membership changed"),
    "membership.ended": _l("Membership ended"),
    "platform_key.created": _l("Platform signing key created"),
    "platform_key.retired": _l("Platform signing key retired"),
    "process.created": _l("Process started"),
    "process.updated": _l("Process changed"),
    "process.activated": _l("Process activated"),
    "process.concluded": _l("Process concluded"),
    "process.withdrawn": _l("Process withdrawn"),
    "process.published": _l("Process published"),
    "process.publication_scheduled": _l("Publication scheduled"),
    "process.facilitator_added": _l("Facilitator added"),
    "process.participant_added": _l("Participant added"),
    "process.participant_removed": _l("Participant removed"),
    "round.created": _l("Round created"),
    "round.updated": _l("Round changed"),
    "round.opened": _l("Round opened"),
    "round.closed": _l("Round closed"),
    "round.deadline_extended": _l("Round deadline extended"),
    "round.input_completed": _l("Input marked complete"),
    "round.reminder_sent": _l("Reminder sent"),
    "round.version_changed": _l("Round moved to a new version"),
    "round.version_pinned": _l("Round fixed on a version"),
    "position.created": _l("Position created"),
    "position.updated": _l("Position changed"),
    "version.created": _l("Version made"),
    "comment.created": _l("Comment placed"),
    "comment.edited": _l("Comment edited"),
    "comment.removed": _l("Comment removed"),
    "amendment.proposed": _l("Amendment proposed"),
    "amendment.decided": _l("Amendment decided"),
    "amendment.rebased": _l("Amendment carried over"),
    "amendment.withdrawn": _l("Amendment withdrawn"),
    "clearance.recorded": _l("Official clearance recorded"),
    "stance.cast": _l("Stance registered"),
    "delegation.created": _l("Mandate delegated"),
    "delegation.revoked": _l("Delegation revoked"),
    "outcome.fixed": _l("Outcome established"),
    "outcome.statement_set": _l("Outcome statement written"),
    "cosignature.signed": _l("Co-signed"),
    "cosignature.withdrawn": _l("Co-signature withdrawn"),
    "cosignature.reauthentication_failed": _l("Co-signing refused: confirmation failed"),
    "letter.created": _l("Joint letter made"),
    "letter.finalised": _l("Joint letter finalised"),
    "signing_ca.created": _l("Signing authority created"),
    "signing_key.created": _l("Signing key created"),
    "signing_key.enrolled": _l("Signing key enrolled"),
    "signing_key.retired": _l("Signing key retired"),
    "signing_key.revoked": _l("Signing key revoked"),
    "signing.custody_set": _l("Key custody chosen"),
    "organisation_certificate.issued": _l("Organisation certificate issued"),
    "organisation_certificate.uploaded": _l("Organisation certificate uploaded"),
    "notice.read": _l("Notice read"),
    # standing bodies (issue 20)
    "body.created": _l("Standing body created"),
    "body.updated": _l("Standing body changed"),
    "body.seat_added": _l("Seat added"),
    "body.seat_changed": _l("Seat changed"),
    "body.seat_removed": _l("Seat removed"),
    "meeting.planned": _l("Meeting planned"),
    "meeting.updated": _l("Meeting changed"),
    "meeting.agenda_item_added": _l("Agenda item added"),
    "meeting.agenda_item_removed": _l("Agenda item removed"),
    "meeting.agenda_published": _l("Agenda published"),
    "meeting.decision_recorded": _l("Decision recorded"),
    "meeting.decision_forwarded": _l("Position forwarded to the administrative body"),
    "meeting.minutes_drafted": _l("Draft minutes saved"),
    "meeting.minutes_approved": _l("Minutes approved"),
    "action.created": _l("Follow-up action created"),
    "action.progress": _l("Progress on a follow-up action"),
    "action.overdue_notified": _l("Overdue action notified"),
    "letter.sent": _l("Letter sent"),
    "letter.reply_recorded": _l("Reply recorded"),
}
"""Readable names of the actions known today; an action without one shows its code."""


def _json_response(data: Any, *, filename: str | None = None) -> Response:
    response = Response(
        json.dumps(data, indent=2, ensure_ascii=False) + "\n", mimetype="application/json"
    )
    if filename:
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _public(response: Response) -> Response:
    """Public, read-only material: anyone may fetch it, also from another site's script."""
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


@bp.app_template_filter("audit_action")
def audit_action_label(action: str) -> str:
    """A readable name for an action; actions of later features show their code."""
    label = ACTION_LABELS.get(action)
    return str(label) if label is not None else action


@bp.app_template_filter("audit_payload")
def audit_payload(payload: str) -> str:
    """The stored payload with spaces after separators, so it wraps in a narrow column
    (as stored if it is not JSON)."""
    try:
        return json.dumps(json.loads(payload), ensure_ascii=False, separators=(", ", ": "))
    except ValueError:
        return payload


def _require_login() -> Response | None:
    if not current_user.is_authenticated:
        return login_manager.unauthorized()  # type: ignore[no-any-return]
    return None


def _event_rows(statement: Select[Any], count_statement: Select[Any]) -> SelectPagination:
    """A page of (event, actor name, actor email, organisation short name) rows: the names
    come in the same query, so the query count does not grow with the page size."""
    return _RowPagination(
        select=statement,
        count_select=count_statement,
        session=db.session,
        per_page=PAGE_SIZE,
        max_per_page=PAGE_SIZE,
        error_out=False,
    )


class _RowPagination(SelectPagination):
    """Flask-SQLAlchemy's pagination, for rows of several columns and a lean count."""

    def _query_items(self) -> list[Any]:
        statement = self._query_args["select"]
        statement = statement.limit(self.per_page).offset(self._query_offset)
        return list(self._query_args["session"].execute(statement).all())

    def _query_count(self) -> int:
        return int(
            self._query_args["session"].execute(self._query_args["count_select"]).scalar_one()
        )


def _with_names(*conditions: Any) -> tuple[Select[Any], Select[Any]]:
    statement = (
        select(AuditEvent, User.display_name, User.email, Organisation.short_name)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .outerjoin(Organisation, Organisation.id == AuditEvent.organisation_id)
        .where(*conditions)
        .order_by(AuditEvent.seq.desc())
    )
    count = (
        select(func.count())
        .select_from(AuditEvent)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .where(*conditions)
    )
    return statement, count


# --- Administrators --------------------------------------------------------------------------


class _Blank(Optional):
    """Optional, without the "(optional)" marker: on a filter form every field is."""

    def __init__(self) -> None:
        super().__init__()
        self.field_flags: dict[str, bool] = {}


class AuditFilterForm(FlaskForm):
    """Filters of the administrators' list; read from the query string (GET, no token)."""

    class Meta:
        csrf = False

    organisation = SelectField(_l("Organisation"), coerce=int, default=0)
    actor = StringField(_l("Done by"), validators=[_Blank(), Length(max=120)])
    action = StringField(_l("Action"), validators=[_Blank(), Length(max=80)])
    date_from = DateField(_l("From"), validators=[_Blank()])
    date_until = DateField(_l("Until"), validators=[_Blank()])

    def validate_date_until(self, field: DateField) -> None:
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(_l("The end date cannot be before the start date."))

    def conditions(self) -> list[Any]:
        """SQL conditions for the valid filters (a filter with an error is left out)."""
        found: list[Any] = []
        if self.organisation.data and not self.organisation.errors:
            found.append(AuditEvent.organisation_id == self.organisation.data)
        actor = (self.actor.data or "").strip().lower()
        if actor and not self.actor.errors:
            found.append(
                or_(
                    func.lower(User.display_name).contains(actor, autoescape=True),
                    User.email.contains(actor, autoescape=True),
                )
            )
        action = (self.action.data or "").strip().rstrip(".")
        if action and not self.action.errors:
            # "membership" finds membership.*; a range keeps the index usable.
            found.append(
                or_(
                    AuditEvent.action == action,
                    and_(AuditEvent.action >= f"{action}.", AuditEvent.action < f"{action}/"),
                )
            )
        if self.date_from.data and not self.date_from.errors:
            found.append(AuditEvent.created_at >= start_of_day(self.date_from.data))
        if self.date_until.data and not self.date_until.errors:
            found.append(AuditEvent.created_at < end_of_day(self.date_until.data))
        return found


def _require_admin() -> Response | None:
    refused = _require_login()
    if refused is None:
        permissions.require(permissions.can_administer(current_user))
    return refused


def _filter_args(form: AuditFilterForm) -> dict[str, str]:
    """The filters as query-string arguments, for pagination links."""
    args = {
        "organisation": str(form.organisation.data or ""),
        "actor": form.actor.data or "",
        "action": form.action.data or "",
        "date_from": form.date_from.data.isoformat() if form.date_from.data else "",
        "date_until": form.date_until.data.isoformat() if form.date_until.data else "",
    }
    return {key: value for key, value in args.items() if value}


@bp.get("/admin/audit")
def admin_events() -> str | Response | tuple[str, int]:
    refused = _require_admin()
    if refused is not None:
        return refused
    arguments = tuple(sorted(request.args.items(multi=True)))

    def content() -> tuple[str, int]:
        form = AuditFilterForm(formdata=request.args)
        form.organisation.choices = [(0, _l("All organisations"))] + [
            (org_id, name)
            for org_id, name in db.session.execute(
                select(Organisation.id, Organisation.name).order_by(Organisation.name)
            )
        ]
        form.validate()
        statement, count = _with_names(*form.conditions())
        html = render_template(
            "audit/_admin_events_body.html",
            form=form,
            page=_event_rows(statement, count),
            filter_args=_filter_args(form),
            filtered=bool(_filter_args(form)),
            head=_head_summary(),
        )
        return html, (422 if form.errors else 200)

    html, status = audit_pages.admin_content(
        audit_pages.AdminAuditKey(arguments, _latest_checkpoint_id()), content
    )
    return render_template("audit/admin_events.html", body_html=html), status


def _latest_checkpoint_id() -> int | None:
    """Part of the audit pages' keys: a checkpoint is signed without an audit event."""
    return db.session.scalar(select(func.max(Checkpoint.id)))


@bp.get("/admin/audit/<int:seq>/receipt.json")
def admin_receipt(seq: int) -> Response:
    refused = _require_admin()
    if refused is not None:
        return refused
    event = db.session.get(AuditEvent, seq)
    if event is None:
        abort(404)
    return _json_response(checkpoints.receipt(event), filename=_receipt_name(event))


def _receipt_name(event: AuditEvent) -> str:
    return f"consensus-audit-event-{event.seq}.json"


def _head_summary() -> dict[str, Any]:
    from consensus import audit

    size, root = audit.tree_head()
    return {"size": size, "root": root.hex(), "checkpoint": checkpoints.latest_checkpoint()}


# --- Members ---------------------------------------------------------------------------------


def _organisation_for_member(slug: str) -> Organisation:
    """The organisation by its slug, if the user may see its audit trail (else 404 / 403)."""
    organisation = load_organisation(slug)
    permissions.require(permissions.can_view_organisation(current_user, organisation))
    return organisation


@bp.get("/audit")
def my_organisations() -> str | Response:
    """Members pick their organisation; with only one, they go straight to its trail."""
    refused = _require_login()
    if refused is not None:
        return refused
    memberships = sorted(
        permissions.valid_memberships(current_user), key=lambda m: m.organisation.name
    )
    if len(memberships) == 1:
        return redirect(url_for("audit.organisation_events", slug=memberships[0].organisation.slug))
    return render_template("audit/my_organisations.html", memberships=memberships)


@bp.get("/audit/<slug>")
def organisation_events(slug: str) -> str | Response:
    refused = _require_login()
    if refused is not None:
        return refused
    organisation = _organisation_for_member(slug)
    page_number = request.args.get("page", 1, type=int)

    def context() -> dict[str, object]:
        statement, count = _with_names(AuditEvent.organisation_id == organisation.id)
        return {
            "organisation": organisation,
            "page": _event_rows(statement, count),
            "checkpoint": checkpoints.latest_checkpoint(),
        }

    key = audit_pages.OrganisationAuditKey(organisation.id, page_number, _latest_checkpoint_id())
    return render_template(
        "audit/organisation_events.html",
        organisation=organisation,
        body_html=audit_pages.ORGANISATION.html(key, context),
    )


@bp.get("/audit/<slug>/<int:seq>/receipt.json")
def organisation_receipt(slug: str, seq: int) -> Response:
    """Only events done for this organisation: another organisation's event is a 404."""
    refused = _require_login()
    if refused is not None:
        return refused
    organisation = _organisation_for_member(slug)
    event = db.session.execute(
        select(AuditEvent).where(
            AuditEvent.seq == seq, AuditEvent.organisation_id == organisation.id
        )
    ).scalar_one_or_none()
    if event is None:
        abort(404)
    return _json_response(checkpoints.receipt(event), filename=_receipt_name(event))


# --- Public ----------------------------------------------------------------------------------


_UNREAD = object()


def _transparency_state() -> tuple[bytes, datetime | None]:
    """What the transparency page shows besides the log's state, for its validators: the
    latest checkpoint (signed without an audit event) with its time, and whether the
    offline verifier ships with this installation."""
    row = db.session.execute(
        select(Checkpoint.id, Checkpoint.created_at).order_by(Checkpoint.id.desc()).limit(1)
    ).first()
    g.transparency_checkpoint_id = row[0] if row is not None else None
    state = f"checkpoint:{g.transparency_checkpoint_id}:{VERIFIER.exists()}"
    return state.encode(), (row[1] if row is not None else None)


@bp.get("/transparency")
@shared_cache.public_depending_on(_transparency_state)
def transparency() -> str:
    """Signed checkpoints and keys only: never an event's contents."""

    def context() -> dict[str, object]:
        latest = list(
            db.session.execute(
                select(Checkpoint).order_by(Checkpoint.id.desc()).limit(PUBLIC_CHECKPOINTS)
            ).scalars()
        )
        keys = checkpoints.all_keys()
        return {
            "checkpoints": latest,
            "total": db.session.scalar(select(func.count()).select_from(Checkpoint)) or 0,
            "keys": keys,
            "key_by_id": {key.id: key for key in keys},
            "allowed_signers": {key.id: checkpoints.allowed_signers_line(key) for key in keys},
            "principal": checkpoints.principal(),
            "namespace": checkpoints.NAMESPACE,
            "verifier_available": VERIFIER.exists(),
        }

    # Read already for the validators when the reader is not logged in (popped: in tests
    # `g` can outlive the request).
    checkpoint_id = g.pop("transparency_checkpoint_id", _UNREAD)
    if checkpoint_id is _UNREAD:
        checkpoint_id = _latest_checkpoint_id()
    key = audit_pages.TransparencyKey(checkpoint_id, VERIFIER.exists())
    return render_template(
        "audit/transparency.html", body_html=audit_pages.TRANSPARENCY.html(key, context)
    )


@bp.get("/transparency/checkpoints.json")
def checkpoints_json() -> Response:
    after = request.args.get("after", type=int)
    return _public(_json_response(checkpoints.checkpoint_list(after_id=after)))


@bp.get("/transparency/allowed_signers")
def allowed_signers() -> Response:
    return _public(Response(checkpoints.allowed_signers_file(), mimetype="text/plain"))


def _checkpoint_or_404(checkpoint_id: int) -> Checkpoint:
    checkpoint = db.session.get(Checkpoint, checkpoint_id)
    if checkpoint is None:
        abort(404)
    return checkpoint


@bp.get("/transparency/checkpoints/<int:checkpoint_id>/note")
def checkpoint_note(checkpoint_id: int) -> Response:
    """The signed text itself, byte for byte, to feed to `ssh-keygen -Y verify`."""
    checkpoint = _checkpoint_or_404(checkpoint_id)
    response = Response(checkpoint.body, mimetype="text/plain")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="checkpoint-{checkpoint.id}.txt"'
    )
    return _public(response)


@bp.get("/transparency/checkpoints/<int:checkpoint_id>/signature")
def checkpoint_signature(checkpoint_id: int) -> Response:
    checkpoint = _checkpoint_or_404(checkpoint_id)
    response = Response(checkpoint.signature, mimetype="text/plain")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="checkpoint-{checkpoint.id}.txt.sig"'
    )
    return _public(response)


@bp.get("/transparency/verify_audit.py")
def verifier_script() -> Response:
    """The stand-alone verifier, so checking needs nothing from us but this one file."""
    if not VERIFIER.exists():
        abort(404)
    response = Response(VERIFIER.read_text(encoding="utf-8"), mimetype="text/x-python")
    response.headers["Content-Disposition"] = 'attachment; filename="verify_audit.py"'
    return _public(response)


@bp.context_processor
def audit_helpers() -> dict[str, Any]:
    return {"audit_origin": current_app.config["AUDIT_ORIGIN"]}
