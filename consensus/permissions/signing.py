"""Who may sign a joint letter for an organisation."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from consensus.models import Organisation, Process, Round
from consensus.permissions.core import Action, AnyUser, Gate, gate


def may_sign(
    user: AnyUser | None,
    process: Process,
    round_: Round,
    organisation: Organisation,
    *,
    eligible_ids: set[int] | None = None,
) -> Gate:
    """The phase gate (open signing round, the organisation's mandate) plus: this
    organisation's stance counted for adoption of exactly this version, so nobody signs
    a text their organisation did not endorse.

    `eligible_ids`: the counted organisations when the caller already knows them (a page
    asking for several organisations reads them once)."""
    decision = gate(user, Action.SIGN, process, organisation, round_=round_)
    if not decision:
        return decision
    if eligible_ids is None:
        # The counted stances are signing's data; imported here because the signing
        # service itself asks this rule book.
        from consensus.signing.eligibility import eligible_organisations

        eligible_ids = {o.id for o in eligible_organisations(process, round_)}
    if organisation.id not in eligible_ids:
        return Gate(
            False,
            str(_l("Only organisations whose endorsement counted for adoption sign this text.")),
        )
    return decision
