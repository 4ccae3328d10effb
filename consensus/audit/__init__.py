"""The audit trail: an append-only Merkle log of every change of state.

- entry: the canonical bytes of one event (the one writer of the format) and the tree's edge;
- log: recording an event in the caller's transaction, the tree head;
- verify: the full verification pass (also parallel, for `flask audit verify`);
- checkpoints: signed checkpoints of the log, the platform key, inclusion and consistency proofs.

This module names the log's API, so callers say `audit.record(...)`.
"""

from consensus.audit.entry import canonical_entry, event_entry, format_time
from consensus.audit.log import current_origin, record, tree_head

__all__ = ["canonical_entry", "current_origin", "event_entry", "format_time", "record", "tree_head"]
