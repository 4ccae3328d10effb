"""The rule book: every "may this person do this" and the one query "who can act for
organisation X in round R". It answers; it never changes anything.

- core.py        memberships, the mandate (representatives and substitutes), processes and
                 the phase gate: `gate(user, Action, process, organisation)`
- acting.py      who can act in a round: `who_can_act`, `who_can_act_many`, `can_act_in`
                 (the same rule as the gate, as a query for many people)
- positions.py   versions, comments and amendments (write a version, edit or remove a
                 comment, withdraw an amendment)
- delegations.py who may lend or take back an organisation's mandate
- signing.py     who may sign for an organisation in a signing round

Callers import from here: `from consensus.permissions import gate, Action`.
"""

from consensus.permissions.acting import (
    ROUND_ACTIONS,
    active_substitutes,
    can_act_in,
    may_act_in_round,
    membership_valid_at,
    who_can_act,
    who_can_act_many,
)
from consensus.permissions.core import (
    ACTION_ROLES,
    ACTION_ROUND_TYPES,
    MANDATE_ACTIONS,
    Action,
    AnyUser,
    Gate,
    Mandate,
    acting_organisations,
    active_delegation,
    can_administer,
    can_create_process,
    can_manage_process,
    can_see_tally,
    can_view_organisation,
    can_view_process,
    gate,
    holds_mandate,
    is_facilitator_of,
    mandate_for,
    may_act_for,
    membership_in,
    require,
    valid_memberships,
)

__all__ = [
    "ACTION_ROLES",
    "ACTION_ROUND_TYPES",
    "MANDATE_ACTIONS",
    "ROUND_ACTIONS",
    "Action",
    "AnyUser",
    "Gate",
    "Mandate",
    "acting_organisations",
    "active_delegation",
    "active_substitutes",
    "can_act_in",
    "can_administer",
    "can_create_process",
    "can_manage_process",
    "can_see_tally",
    "can_view_organisation",
    "can_view_process",
    "gate",
    "holds_mandate",
    "is_facilitator_of",
    "mandate_for",
    "may_act_for",
    "may_act_in_round",
    "membership_in",
    "membership_valid_at",
    "require",
    "valid_memberships",
    "who_can_act",
    "who_can_act_many",
]
