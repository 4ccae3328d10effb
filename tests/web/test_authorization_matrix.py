"""The authorization matrix (ASVS V4): every rule in app.url_map, for every kind of user.

Each entry says, per HTTP method, the status every role gets, in the column order of
COLUMNS. Tokens: a number is that exact status; "L" is a redirect to the login page; "R" a
redirect anywhere else (typically Post/Redirect/Get, or a gate refusal shown as a flash —
the IDOR tests check that such a refusal changes nothing).

Adding a route? Add a line to MATRIX, or `test_every_route_is_in_the_matrix` fails. If
the route needs other URL values than the defaults in MatrixWorld.url_values(), add them
to URL_VALUES; form data for POSTs goes in POST_DATA.

One world is built per (endpoint, method); the roles then try in MatrixWorld ORDER (least
privileged first), so an allowed state change happens after the refusals were checked.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask, url_for

from consensus.models import NotificationKind
from consensus.notifications.preferences import SWITCHABLE, unsubscribe_token
from tests.web.matrix_world import ORDER, MatrixWorld, build_matrix_world

COLUMNS = (
    "anonymous",
    "observer",
    "official",
    "representative",
    "other_representative",
    "facilitator",
    "admin",
)

# fmt: off
MATRIX: dict[str, dict[str, str]] = {
    # endpoint                        method: anon obs  off  rep  other facil admin
    "main.index":                     {"GET": "200 200 200 200 200 200 200"},
    "main.about":                     {"GET": "200 200 200 200 200 200 200"},
    "main.accessibility":             {"GET": "200 200 200 200 200 200 200"},
    "main.set_locale":                {"POST": "R R R R R R R"},
    "main.choose_locale":             {"GET": "R R R R R R R"},
    "main.notices_read":              {"POST": "L R R R R R R"},
    "wellknown.security_txt":         {"GET": "200 200 200 200 200 200 200"},
    # probes and metrics (docs/operations.md): no login; /metrics needs its bearer token and
    # does not exist without CONSENSUS_METRICS_TOKEN (tests/web/test_ops.py)
    "ops.healthz":                    {"GET": "200 200 200 200 200 200 200"},
    "ops.readyz":                     {"GET": "200 200 200 200 200 200 200"},
    "ops.metrics":                    {"GET": "404 404 404 404 404 404 404"},
    "static":                         {"GET": "200 200 200 200 200 200 200"},
    # auth
    "auth.login":                     {"GET": "200 R R R R R R", "POST": "200 R R R R R R"},
    "auth.login_code":                {"GET": "L L L L L L L", "POST": "L L L L L L L"},
    "auth.logout":                    {"POST": "R R R R R R R"},
    "auth.account":                   {"GET": "L 200 200 200 200 200 200"},
    "auth.change_password":           {"GET": "L 200 200 200 200 200 200",
                                       "POST": "L 200 200 200 200 200 200"},
    "auth.end_other_sessions":        {"POST": "L R R R R R R"},
    "auth.totp_setup":                {"GET": "L 200 200 200 200 200 200",
                                       "POST": "L 200 200 200 200 200 200"},
    "auth.totp_disable":              {"GET": "L R R R R R R", "POST": "L R R R R R R"},
    "auth.recovery_codes":            {"POST": "L R R R R R R"},
    "auth.forgot_password":           {"GET": "200 200 200 200 200 200 200",
                                       "POST": "200 200 200 200 200 200 200"},
    "auth.reset_password":            {"GET": "200 200 200 200 200 200 200",
                                       "POST": "200 200 200 200 200 200 200"},
    # identity (issue 19): the organisation's login, passkeys, throttled accounts
    "identity.oidc_find":             {"POST": "400 400 400 400 400 400 400"},
    "identity.oidc_start":            {"GET": "404 404 404 404 404 404 404"},
    "identity.oidc_callback":         {"GET": "L L L L L L L"},
    "identity.provider_edit":         {"GET": "L 403 403 403 403 403 200",
                                       "POST": "L 403 403 403 403 403 200"},
    "identity.pending_links":         {"GET": "L 403 403 403 403 403 200"},
    "identity.approve_link":          {"POST": "L 403 403 403 403 403 404"},
    "identity.reject_link":           {"POST": "L 403 403 403 403 403 404"},
    "admin.throttled_accounts":       {"GET": "L 403 403 403 403 403 200"},
    "passkeys.login_options":         {"POST": "200 200 200 200 200 200 200"},
    "passkeys.login":                 {"POST": "403 403 403 403 403 403 403"},
    "passkeys.second_factor_options": {"POST": "403 403 403 403 403 403 403"},
    "passkeys.second_factor":         {"POST": "403 403 403 403 403 403 403"},
    "passkeys.register_options":      {"POST": "L 200 200 200 200 200 200"},
    "passkeys.register":              {"POST": "L 400 400 400 400 400 400"},
    "passkeys.rename":                {"POST": "L 404 404 404 404 404 404"},
    "passkeys.remove":                {"POST": "L 404 404 404 404 404 404"},
    "passkeys.sign_options":          {"POST": "L 404 404 404 404 404 404"},
    "passkeys.sign":                  {"POST": "L 404 404 404 404 404 404"},
    "passkeys.admin_remove_all":      {"POST": "L 403 403 403 403 403 R"},
    # calendar (the feed is authorised by its secret token, not by a login)
    "calendar.feed":                  {"GET": "200 200 200 200 200 200 200"},
    # notifications: the inbox and preferences are one's own; the one-click unsubscribe
    # link works without a login (its signed token names the person and the kind); the
    # mail queue is for administrators
    "notifications.inbox":            {"GET": "L 200 200 200 200 200 200"},
    "notifications.mark_read":        {"POST": "L R R R R R R"},
    "notifications.preferences":      {"GET": "L 200 200 200 200 200 200",
                                       "POST": "L R R R R R R"},
    "notifications.unsubscribe":      {"GET": "200 200 200 200 200 200 200",
                                       "POST": "200 200 200 200 200 200 200"},
    "notifications.mail_queue":       {"GET": "L 403 403 403 403 403 200"},
    "notifications.deadline_warnings": {"POST": "L 403 403 403 404 R 403"},
    "notifications.mail_retry":       {"POST": "L 403 403 403 403 403 404"},
    "calendar.settings":              {"GET": "L 200 200 200 200 200 200"},
    "calendar.reset":                 {"POST": "L R R R R R R"},
    # administration: administrators only
    "admin.index":                    {"GET": "L 403 403 403 403 403 200"},
    "admin.organisations_list":       {"GET": "L 403 403 403 403 403 200"},
    "admin.organisation_new":         {"GET": "L 403 403 403 403 403 200",
                                       "POST": "L 403 403 403 403 403 200"},
    "admin.organisation_edit":        {"GET": "L 403 403 403 403 403 200",
                                       "POST": "L 403 403 403 403 403 R"},
    "admin.users_list":               {"GET": "L 403 403 403 403 403 200"},
    "admin.user_new":                 {"GET": "L 403 403 403 403 403 200",
                                       "POST": "L 403 403 403 403 403 200"},
    "admin.user_edit":                {"GET": "L 403 403 403 403 403 200",
                                       "POST": "L 403 403 403 403 403 R"},
    "admin.user_reset_2fa":           {"POST": "L 403 403 403 403 403 R"},
    "admin.membership_new":           {"POST": "L 403 403 403 403 403 400"},
    "admin.membership_edit":          {"GET": "L 403 403 403 403 403 200",
                                       "POST": "L 403 403 403 403 403 200"},
    "admin.membership_end":           {"POST": "L 403 403 403 403 403 R"},
    # audit trail and transparency
    "audit.admin_events":             {"GET": "L 403 403 403 403 403 200"},
    "audit.admin_receipt":            {"GET": "L 403 403 403 403 403 200"},
    "audit.my_organisations":         {"GET": "L R R R R 200 200"},
    "audit.organisation_events":      {"GET": "L 200 200 200 403 403 200"},
    "audit.organisation_receipt":     {"GET": "L 200 200 200 403 403 200"},
    "audit.transparency":             {"GET": "200 200 200 200 200 200 200"},
    "audit.allowed_signers":          {"GET": "200 200 200 200 200 200 200"},
    "audit.checkpoints_json":         {"GET": "200 200 200 200 200 200 200"},
    "audit.checkpoint_note":          {"GET": "200 200 200 200 200 200 200"},
    "audit.checkpoint_signature":     {"GET": "200 200 200 200 200 200 200"},
    "audit.verifier_script":          {"GET": "200 200 200 200 200 200 200"},
    # processes: members of participating organisations see; facilitators manage;
    # a non-participant gets 404 (the process's existence does not leak)
    "processes.index":                {"GET": "L 200 200 200 200 200 200"},
    "processes.new":                  {"GET": "L 403 403 403 403 200 403",
                                       "POST": "L 403 403 403 403 200 403"},
    "processes.show":                 {"GET": "L 200 200 200 404 200 200"},
    "processes.round_page":           {"GET": "L 200 200 200 404 200 200"},
    "processes.round_text":           {"GET": "L R R R 404 R R"},
    "processes.mark_complete":        {"POST": "L R R R 404 R R"},
    "processes.manage":               {"GET": "L 403 403 403 404 200 403"},
    "processes.edit":                 {"GET": "L 403 403 403 404 200 403",
                                       "POST": "L 403 403 403 404 200 403"},
    "processes.add_participant":      {"POST": "L 403 403 403 404 400 403"},
    "processes.remove_participant":   {"POST": "L 403 403 403 404 400 403"},
    "processes.add_facilitator":      {"POST": "L 403 403 403 404 400 403"},
    "processes.transition":           {"POST": "L 403 403 403 404 R 403"},
    "processes.withdraw":             {"POST": "L 403 403 403 404 400 403"},
    "processes.publish":              {"POST": "L 403 403 403 404 R 403"},
    "processes.round_new":            {"GET": "L 403 403 403 404 200 403",
                                       "POST": "L 403 403 403 404 200 403"},
    "processes.round_edit":           {"GET": "L 403 403 403 404 200 403",
                                       "POST": "L 403 403 403 404 200 403"},
    "processes.round_transition":     {"POST": "L 403 403 403 404 R 403"},
    "processes.round_extend":         {"POST": "L 403 403 403 404 400 403"},
    "processes.round_remind":         {"POST": "L 403 403 403 404 R 403"},
    # positions, comments, amendments
    "positions.index":                {"GET": "L 200 200 200 404 200 200"},
    "positions.new":                  {"GET": "L 403 403 403 404 200 403",
                                       "POST": "L 403 403 403 404 400 403"},
    "positions.show":                 {"GET": "L R R R 404 R R"},
    "positions.edit":                 {"GET": "L 403 403 403 404 200 403",
                                       "POST": "L 403 403 403 404 R 403"},
    "positions.history":              {"GET": "L 200 200 200 404 200 200"},
    "positions.version":              {"GET": "L 200 200 200 404 200 200"},
    "positions.version_markdown":     {"GET": "L 200 200 200 404 200 200"},
    "positions.version_pdf":          {"GET": "L 200 200 200 404 200 200"},
    # one paragraph's discussion: the htmx part; a plain GET is sent to the version page
    "positions.discussion":           {"GET": "L R R R 404 R R"},
    "positions.new_version":          {"GET": "L 403 403 403 404 200 403",
                                       "POST": "L 403 403 403 404 400 403"},
    "positions.pin":                  {"POST": "L 403 403 403 404 R 403"},
    "positions.diff":                 {"GET": "L 200 200 200 404 200 200"},
    "positions.comment_new":          {"POST": "L 403 400 400 404 400 403"},
    "positions.comment_reply":        {"GET": "L 403 200 200 404 200 403"},
    "positions.comment_edit":         {"GET": "L 403 200 403 404 403 403",
                                       "POST": "L 403 R 403 404 403 403"},
    "positions.comment_remove":       {"POST": "L 403 R 403 404 403 403"},
    "positions.comment_history":      {"GET": "L 200 200 200 404 200 200"},
    "positions.amendments":           {"GET": "L 200 200 200 404 200 200"},
    "positions.amendment":            {"GET": "L 200 200 200 404 200 200"},
    "positions.amendment_new":        {"GET": "L R 200 200 404 R R",
                                       "POST": "L R 400 400 404 R R"},
    "positions.amendment_withdraw":   {"POST": "L 403 R 403 404 403 403"},
    "positions.amendment_decide":     {"POST": "L 403 403 403 404 400 403"},
    "positions.amendment_rebase":     {"GET": "L 403 403 403 404 404 403",
                                       "POST": "L 403 403 403 404 404 403"},
    "positions.apply":                {"GET": "L 403 403 403 404 200 403",
                                       "POST": "L 403 403 403 404 400 403"},
    "positions.consolidate":          {"GET": "L 403 403 403 404 200 403",
                                       "POST": "L 403 403 403 404 R 403"},
    # organisation contributions (issue 21): only the organisation's writers see its space
    "positions.space":                {"GET": "L 404 200 200 404 404 404",
                                       "POST": "L 404 400 400 404 404 404"},
    "positions.contribution":         {"GET": "L 404 200 200 404 404 404"},
    "positions.contribution_edit":    {"POST": "L 404 400 400 404 404 404"},
    "positions.contribution_note":    {"POST": "L 404 400 400 404 404 404"},
    "positions.contribution_step":    {"POST": "L 404 R R 404 404 404"},
    "positions.drafting_settings":    {"POST": "L 403 403 403 404 R 403"},
    "positions.disposition":          {"GET": "L 200 200 200 404 200 200"},
    # feedback before publication: not sent in this world (the round is open)
    "positions.disposition_send":     {"POST": "L 403 403 403 404 R 403"},
    "positions.disposition_feedback": {"GET": "L 404 404 404 404 404 404",
                                       "POST": "L 404 404 404 404 404 404"},
    "positions.disposition_csv":      {"GET": "L 200 200 200 404 200 200"},
    "positions.disposition_pdf":      {"GET": "L 200 200 200 404 200 200"},
    # endorsements and delegations (round_id: the endorsement round, not yet open)
    "endorsements.endorsement":       {"GET": "L 200 200 200 404 200 200"},
    "endorsements.endorsement_history": {"GET": "L 200 200 200 404 200 200"},
    "endorsements.tally_fragment":    {"GET": "L R R R 404 R R"},
    "endorsements.cast":              {"POST": "L 403 403 403 404 403 403"},
    "endorsements.statement":         {"POST": "L 403 403 403 404 404 403"},
    "endorsements.clearance":         {"GET": "L 404 404 404 404 404 404"},
    "endorsements.clear":             {"POST": "L 404 404 404 404 404 404"},
    "endorsements.delegations":       {"GET": "L 200 200 200 200 200 200"},
    "endorsements.delegate":          {"POST": "L 403 403 422 422 403 403"},
    "endorsements.revoke":            {"POST": "L 404 404 404 404 404 404"},
    # signing (no signing round in this world: the signing suite covers an open one)
    "signing.keys":                   {"GET": "L 403 403 200 403 403 200"},
    "signing.enrol_key":              {"POST": "L 403 403 400 403 403 400"},
    "signing.revoke_key":             {"POST": "L 403 403 404 403 403 404"},
    "signing.rotate_key":             {"POST": "L 403 403 404 403 403 404"},
    "signing.admin_organisation":     {"GET": "L 403 403 403 403 403 200",
                                       "POST": "L 403 403 403 403 403 200"},
    "signing.issue_certificate":      {"POST": "L 403 403 403 403 403 R"},
    "signing.upload_pkcs12":          {"POST": "L 403 403 403 403 403 400"},
    # no certificate in this world yet: nothing to revoke
    "signing.revoke_certificate":     {"POST": "L 403 403 403 403 403 404"},
    "signing.remote_signing":         {"POST": "L 403 403 403 403 403 R"},
    # a CA's CRL is public; this world has no CA yet
    "signing.certificate_revocation_list": {"GET": "404 404 404 404 404 404 404"},
    "signing.round_page":             {"GET": "L 404 404 404 404 404 404"},
    "signing.letter_pdf":             {"GET": "L 404 404 404 404 404 404"},
    "signing.unsigned_pdf":           {"GET": "L 404 404 404 404 404 404"},
    "signing.statement":              {"GET": "L 404 404 404 404 404 404"},
    "signing.upload":                 {"POST": "L 404 404 404 404 404 404"},
    "signing.platform_sign":          {"POST": "L 404 404 404 404 404 404"},
    "signing.withdraw":               {"POST": "L 404 404 404 404 404 404"},
    "signing.public_signatures":      {"GET": "404 200 200 200 404 200 200"},
    "signing.public_bundle":          {"GET": "404 404 404 404 404 404 404"},
    # standing bodies (issue 20): members of member organisations see a body and its
    # meetings (observer, official, representative of VNG); an outsider ("Buiten") and a
    # facilitator who is no member get 404; administrators set bodies up and may run the
    # meetings (the secretary, seat holders without a membership and seat substitutes:
    # test_authorization_matrix_bodies.py). The held meeting has begun with its agenda
    # published, so its agenda no longer changes (a flashed refusal: R).
    "bodies.index":                   {"GET": "L 200 200 200 200 200 200"},
    "bodies.new":                     {"GET": "L 403 403 403 403 403 200",
                                       "POST": "L 403 403 403 403 403 200"},
    "bodies.show":                    {"GET": "L 200 200 200 404 404 200"},
    "bodies.edit":                    {"GET": "L 403 403 403 404 404 200",
                                       "POST": "L 403 403 403 404 404 200"},
    "bodies.set_seat":                {"POST": "L 403 403 403 404 404 400"},
    "bodies.remove_seat":             {"POST": "L 403 403 403 404 404 R"},
    "bodies.meeting":                 {"GET": "L 200 200 200 404 404 200"},
    "bodies.meeting_new":             {"GET": "L 403 403 403 404 404 200",
                                       "POST": "L 403 403 403 404 404 200"},
    "bodies.meeting_edit":            {"GET": "L 403 403 403 404 404 200",
                                       "POST": "L 403 403 403 404 404 200"},
    "bodies.item_add":                {"POST": "L 403 403 403 404 404 400"},
    "bodies.item_remove":             {"POST": "L 403 403 403 404 404 R"},
    "bodies.publish":                 {"POST": "L 403 403 403 404 404 R"},
    "bodies.decision_add":            {"POST": "L 403 403 403 404 404 400"},
    "bodies.minutes":                 {"POST": "L 403 403 403 404 404 R"},
    "bodies.approve_minutes":         {"POST": "L 403 403 403 404 404 R"},
    "bodies.forward":                 {"POST": "L 403 403 403 404 404 R"},
    "bodies.action_from_decision":    {"GET": "L 403 403 403 404 404 200",
                                       "POST": "L 403 403 403 404 404 200"},
    # cancelling a meeting (the held one has begun: an empty reason is refused first, 400),
    # archiving a body (administrators; the official body has no planned meeting: R), and
    # documents on agenda items: added by who runs the meetings, downloaded by who sees
    # the agenda (everyone else 404, like the body)
    "bodies.cancel_meeting":          {"POST": "L 403 403 403 404 404 400"},
    "bodies.archive":                 {"POST": "L 403 403 403 404 404 R"},
    "bodies.document_add":            {"POST": "L 403 403 403 404 404 400"},
    "bodies.document":                {"GET": "L 200 200 200 404 404 200"},
    # follow-up actions: the action is VNG's, from the official body's decision on the
    # process (so its facilitator sees it too); VNG's officials and representatives, the
    # process's facilitators and admins report progress
    "bodies.actions":                 {"GET": "L 200 200 200 200 200 200"},
    "bodies.action":                  {"GET": "L 200 200 200 404 200 200",
                                       "POST": "L 403 400 400 404 400 400"},
    # a process's follow-up: seen by whoever sees the process; its facilitators record
    # the letter, the reply and actions
    "bodies.follow_up":               {"GET": "L 200 200 200 404 200 200"},
    "bodies.action_from_process":     {"GET": "L 403 403 403 404 200 403",
                                       "POST": "L 403 403 403 404 200 403"},
    "bodies.dispatch":                {"POST": "L 403 403 403 404 400 403"},
    "bodies.reply":                   {"POST": "L 403 403 403 404 400 403"},
    "bodies.reply_document":          {"GET": "L 200 200 200 404 200 200"},
    "bodies.public_reply_document":   {"GET": "404 404 404 404 404 404 404"},
    "bodies.public_feed":             {"GET": "404 404 404 404 404 404 404"},
    # public pages: only published processes exist there
    "public.index":                   {"GET": "200 200 200 200 200 200 200"},
    "public.process":                 {"GET": "404 404 404 404 404 404 404"},
    "public.board":                   {"GET": "404 404 404 404 404 404 404"},
    "public.rule":                    {"GET": "404 404 404 404 404 404 404"},
    "public.retally_script":          {"GET": "200 200 200 200 200 200 200"},
    # personal access tokens for the REST API (no token in this world: id 1 is nobody's;
    # tests/web/test_api_tokens.py covers one's own and another's token)
    "api_tokens.create":              {"POST": "L 422 422 422 422 422 422"},
    "api_tokens.revoke":              {"POST": "L 404 404 404 404 404 404"},
    "api_tokens.admin_list":          {"GET": "L 403 403 403 403 403 200"},
    "api_tokens.admin_revoke":        {"POST": "L 403 403 403 403 403 404"},
    # the API's reference page; the API itself (/api/v1) has its own matrix with token
    # scopes: tests/web/test_authorization_matrix_api.py
    "api_reference.reference":        {"GET": "200 200 200 200 200 200 200"},
}
# fmt: on

# URL values that differ from MatrixWorld.url_values(), per endpoint.
URL_VALUES: dict[str, Callable[[MatrixWorld], dict[str, object]]] = {
    "auth.reset_password": lambda w: {"token": w.reset_token},
    "audit.organisation_events": lambda w: {"slug": w.participant.slug},
    "audit.organisation_receipt": lambda w: {
        "slug": w.participant.slug,
        "seq": w.extra["participant_event_seq"],
    },
    "signing.keys": lambda w: {"slug": w.participant.slug},
    "signing.enrol_key": lambda w: {"slug": w.participant.slug},
    "signing.revoke_key": lambda w: {"slug": w.participant.slug},
    "signing.rotate_key": lambda w: {"slug": w.participant.slug},
    "signing.certificate_revocation_list": lambda w: {"ca_id": 1},
    **{
        f"bodies.{name}": (lambda w: {"slug": w.extra["bodies"].official.slug})  # type: ignore[attr-defined]
        for name in (
            "show",
            "edit",
            "set_seat",
            "remove_seat",
            "meeting",
            "meeting_new",
            "meeting_edit",
            "item_add",
            "item_remove",
            "publish",
            "decision_add",
            "minutes",
            "approve_minutes",
            "forward",
            "action_from_decision",
            "cancel_meeting",
            "archive",
            "document_add",
            "document",
        )
    },
    "main.choose_locale": lambda w: {"locale": "en", "next": "/"},
    "processes.transition": lambda w: {"transition": "conclude"},
    "identity.approve_link": lambda w: {"link_id": 1},
    "identity.reject_link": lambda w: {"link_id": 1},
    "passkeys.rename": lambda w: {"passkey_id": 1},
    "passkeys.remove": lambda w: {"passkey_id": 1},
    "notifications.unsubscribe": lambda w: {"token": _unsubscribe_token(w)},
    "notifications.mail_retry": lambda w: {"mail_id": 999999},
    "processes.round_transition": lambda w: {"transition": "close"},
    **{
        f"endorsements.{name}": (lambda w: {"round_id": w.extra["endorsement_round"].id})  # type: ignore[attr-defined]
        for name in ("endorsement", "endorsement_history", "tally_fragment", "cast", "statement")
    },
}

# Form data for POSTs (CSRF is off in tests); without an entry the form is empty.
POST_DATA: dict[str, dict[str, str]] = {
    "main.set_locale": {"locale": "en", "next": "/"},
    "notifications.deadline_warnings": {"deadline_warning_days": "3, 1"},
    "notifications.preferences": {
        **{kind.value: "immediate" for kind in SWITCHABLE},
        "digest_hour": "8",
        "time_zone": "Europe/Amsterdam",
    },
}


def _unsubscribe_token(world: MatrixWorld) -> str:
    """The one-click link an e-mail to the official carries (reminders)."""
    return unsubscribe_token(world.users["official"].id, NotificationKind.REMINDER)


SAFE_METHODS = {"HEAD", "OPTIONS"}


def _routes(app: Flask) -> set[tuple[str, str]]:
    return {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if not rule.rule.startswith("/api/v1")  # test_authorization_matrix_api.py
        for method in rule.methods - SAFE_METHODS  # type: ignore[operator]
    }


def _matrix_cases() -> list[tuple[str, str]]:
    return [(endpoint, method) for endpoint, row in MATRIX.items() for method in row]


def test_every_route_is_in_the_matrix(app):
    """A new route without an entry fails here: nobody adds a door without saying who
    may open it."""
    routes = _routes(app)
    listed = set(_matrix_cases())
    missing = sorted(routes - listed)
    stale = sorted(listed - routes)
    assert not missing, f"add these to MATRIX in {__file__}: {missing}"
    assert not stale, f"these MATRIX entries name no route: {stale}"
    for row in MATRIX.values():
        for expected in row.values():
            assert len(expected.split()) == len(COLUMNS), row


def _matches(token: str, status: int, location: str) -> bool:
    if token == "L":
        return status in {302, 303} and location.startswith("/login")
    if token == "R":
        return status in {302, 303} and not location.startswith("/login")
    return status == int(token)


def _url(app: Flask, world: MatrixWorld, endpoint: str) -> str:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    values = world.url_values()
    if endpoint in URL_VALUES:
        values.update(URL_VALUES[endpoint](world))
    if "transition" in rule.arguments and "transition" not in values:
        values["transition"] = "activate"
    with app.test_request_context():
        return url_for(endpoint, **{k: values[k] for k in rule.arguments})


def _check(app: Flask, world: MatrixWorld, endpoint: str, method: str) -> list[str]:
    """Every role tries; returns what differs from the matrix (never a 500)."""
    url = _url(app, world, endpoint)
    expected = dict(zip(COLUMNS, MATRIX[endpoint][method].split(), strict=True))
    wrong = []
    for role in ORDER:
        client = world.client_for(app, role)
        response = client.open(url, method=method, data=POST_DATA.get(endpoint, {}))
        response.close()
        location = response.headers.get("Location", "")
        if not _matches(expected[role], response.status_code, location):
            wrong.append(
                f"{method} {url} as {role}: expected {expected[role]}, "
                f"got {response.status_code} {location}".rstrip()
            )
    return wrong


def test_authorization_matrix_for_reading(app):
    """GET changes nothing, so one world serves every GET route (fast)."""
    world = build_matrix_world()
    wrong = [
        problem
        for endpoint, method in _matrix_cases()
        if method == "GET"
        for problem in _check(app, world, endpoint, method)
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("endpoint", "method"), [case for case in _matrix_cases() if case[1] != "GET"]
)
def test_authorization_matrix_for_changing(app, endpoint, method):
    """Each state-changing route gets a fresh world."""
    world = build_matrix_world()
    wrong = _check(app, world, endpoint, method)
    assert not wrong, "\n".join(wrong)
