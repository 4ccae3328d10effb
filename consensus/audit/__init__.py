"""The audit trail: an append-only Merkle log of every change of state.

- entry: the canonical bytes of one event (the one writer of the format) and the tree's edge;
- log: recording an event in the caller's transaction, the tree head;
- verify: the full verification pass (also parallel, for `flask audit verify`);
- verify_worker: what each worker process of that pass does (no Flask, no models);
- checkpoints: signed checkpoints of the log, the platform key, inclusion and consistency proofs.

This module names the log's API, so callers say `audit.record(...)`. The names are loaded
on first use (PEP 562), so that a verification worker, which imports only
consensus.audit.verify_worker, does not import the application's models and extensions.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from consensus.audit.entry import canonical_entry, event_entry, format_time
    from consensus.audit.log import current_origin, record, tree_head

_HOMES = {
    "canonical_entry": "consensus.audit.entry",
    "event_entry": "consensus.audit.entry",
    "format_time": "consensus.audit.entry",
    "current_origin": "consensus.audit.log",
    "record": "consensus.audit.log",
    "tree_head": "consensus.audit.log",
}

__all__ = ["canonical_entry", "current_origin", "event_entry", "format_time", "record", "tree_head"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value
