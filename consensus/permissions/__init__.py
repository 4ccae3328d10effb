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
- processes.py   who may see a process, as a check (`can_see_process`) and as SQL for lists
                 (`visible_clause` and the `Sight` it asks of a reader, `visible_processes`,
                 `viewable_*`, `involved_*`)
- bodies.py      standing bodies, meetings, follow-up actions, the letter's dispatch

Callers import from here: `from consensus.permissions import gate, Action`.
"""

from consensus.permissions.acting import (
    ROUND_ACTIONS,
    active_substitutes,
    can_act_in,
    may_act_in_round,
    membership_valid_at,
    substituting_for,
    who_can_act,
    who_can_act_many,
    who_takes_part_many,
)
from consensus.permissions.bodies import (
    action_filter,
    can_archive_body,
    can_download_document,
    can_follow_up_process,
    can_manage_body,
    can_run_meetings,
    can_see_agenda,
    can_update_action,
    can_view_action,
    can_view_body,
    holds_seat,
    is_secretary,
    visible_bodies,
    visible_body_ids,
    who_attends,
    who_reports_on,
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
    is_involved_in,
    mandate_for,
    may_act_for,
    membership_in,
    require,
    valid_memberships,
)
from consensus.permissions.delegations import (
    can_revoke,
    may_delegate,
    represented_organisations,
)
from consensus.permissions.positions import (
    can_edit_comment,
    can_remove_comment,
    comment_edit_window,
    may_withdraw,
    may_write_version,
)
from consensus.permissions.processes import (
    Sight,
    can_see_process,
    involved_clause,
    involved_processes,
    published_clause,
    sight,
    sight_clause,
    viewable_clause,
    viewable_processes,
    visible_clause,
    visible_processes,
)
from consensus.permissions.signing import may_sign

__all__ = [
    "action_filter",
    "can_archive_body",
    "can_download_document",
    "can_follow_up_process",
    "can_manage_body",
    "can_run_meetings",
    "can_see_agenda",
    "can_update_action",
    "can_view_action",
    "can_view_body",
    "holds_seat",
    "is_secretary",
    "visible_bodies",
    "visible_body_ids",
    "who_attends",
    "who_reports_on",
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
    "can_edit_comment",
    "can_remove_comment",
    "can_revoke",
    "comment_edit_window",
    "may_delegate",
    "may_sign",
    "may_withdraw",
    "may_write_version",
    "represented_organisations",
    "can_create_process",
    "can_manage_process",
    "can_see_tally",
    "can_view_organisation",
    "can_view_process",
    "gate",
    "holds_mandate",
    "is_facilitator_of",
    "is_involved_in",
    "can_see_process",
    "involved_clause",
    "involved_processes",
    "published_clause",
    "viewable_clause",
    "viewable_processes",
    "visible_clause",
    "Sight",
    "sight",
    "sight_clause",
    "visible_processes",
    "mandate_for",
    "may_act_for",
    "may_act_in_round",
    "membership_in",
    "membership_valid_at",
    "require",
    "substituting_for",
    "valid_memberships",
    "who_can_act",
    "who_can_act_many",
    "who_takes_part_many",
]
