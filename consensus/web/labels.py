"""Human labels for enum values, shared by the templates."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from consensus.models import ProcessState, RoundState

PROCESS_STATE_LABELS = {
    ProcessState.DRAFT: _l("Draft"),
    ProcessState.ACTIVE: _l("Active"),
    ProcessState.CONCLUDED: _l("Concluded"),
    ProcessState.WITHDRAWN: _l("Withdrawn"),
}
ROUND_STATE_LABELS = {
    RoundState.SCHEDULED: _l("Scheduled"),
    RoundState.OPEN: _l("Open"),
    RoundState.CLOSED: _l("Closed"),
}
