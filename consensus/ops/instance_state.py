"""Give every SQLAlchemy `InstanceState` its attribute dictionary when it is made.

Why: a use-after-free in CPython's attribute storage, found by the benchmark (issue 23) and
traced with valgrind and gdb. Since Python 3.11 an object keeps its attributes in an inline
"values" array until one is set whose name the class's shared keys cannot take; then
CPython turns the array into a real dictionary (`make_dict_from_instance_attributes`). That
step allocates the dictionary object, and the allocation can start the cyclic garbage
collector. If the collector frees an ORM object whose state is the very object being
changed, SQLAlchemy's weakref callback `InstanceState._cleanup` sets `session_id` and
`_strong_obj` on that state: it builds a dictionary of its own from the same array and, by
growing it, frees the array. The outer assignment then goes on with the freed array and the
heap is corrupt: a segmentation fault later, at a random place. The outer assignment seen was
`state._strong_obj = None` in `InstanceState._detach_states` while the session closed at the
end of a request (`Session.close` -> `expunge_all`), which is when states whose objects are
only held in reference cycles are touched. It needs the collector to run at exactly that
allocation, so it shows up only with some heap layouts (here: the audit trail and then the
public outcome page in one process, with the allocator tuned), but it can happen in any
worker.

The remedy: ask for the state's `__dict__` at the end of `InstanceState.__init__`, while
the ORM object is certainly alive (its constructor or the loader holds it). The dictionary
is then made once, at a moment no callback of this state can run, and every later
assignment goes into an existing dictionary, which allocates no collected object and so
cannot start the collector. The cost is one small dictionary per loaded object, which most
states got anyway (SQLAlchemy's memoized attributes write to `__dict__`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm.state import InstanceState

_MARK = "_consensus_dict_at_init"


def install() -> bool:
    """Wrap `InstanceState.__init__` once per process; True when it was installed now."""
    if getattr(InstanceState.__init__, _MARK, False):
        return False
    original = InstanceState.__init__

    def __init__(self: InstanceState[Any], obj: Any, manager: Any) -> None:
        original(self, obj, manager)
        self.__dict__  # noqa: B018 - materialise the dictionary now (see the module)

    setattr(__init__, _MARK, True)
    __init__.__wrapped__ = original  # type: ignore[attr-defined]
    InstanceState.__init__ = __init__  # type: ignore[method-assign]
    return True
