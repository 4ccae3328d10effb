"""Every ORM object's state has its attribute dictionary from the start
(consensus/ops/instance_state.py: the guard against CPython's use-after-free when the
collector runs while a state's inline attributes become a dictionary)."""

from __future__ import annotations

import gc
from typing import Any

from sqlalchemy import ForeignKey, create_engine, inspect, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.orm.state import InstanceState

import consensus.models  # noqa: F401 - installs the guard, as every Consensus process does
from consensus.ops import instance_state


class _Base(DeclarativeBase):
    pass


class _Parent(_Base):
    __tablename__ = "parent"
    id: Mapped[int] = mapped_column(primary_key=True)
    children: Mapped[list[_Child]] = relationship(back_populates="parent")


class _Child(_Base):
    __tablename__ = "child"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("parent.id"))
    parent: Mapped[_Parent] = relationship(back_populates="children")


def _has_dictionary(state: InstanceState[Any]) -> bool:
    """Whether the state already has a real `__dict__` object, asked without making one
    (reading `state.__dict__` would make it): the collector's view of the state lists the
    dictionary only once it exists, and the inline values one by one before."""
    return any(type(r) is dict and "session_id" in r for r in gc.get_referents(state))


def test_states_of_made_and_loaded_objects_have_their_dictionary() -> None:
    engine = create_engine("sqlite://")
    _Base.metadata.create_all(engine)
    with Session(engine) as session:
        parent = _Parent(id=1, children=[_Child(id=n) for n in range(1, 4)])
        session.add(parent)
        session.commit()
        assert _has_dictionary(inspect(parent))
    with Session(engine) as session:
        loaded = session.scalars(select(_Child)).all()
        assert loaded and all(_has_dictionary(inspect(child)) for child in loaded)
        assert _has_dictionary(inspect(loaded[0].parent))
    engine.dispose()


def test_the_probe_tells_a_state_without_its_dictionary() -> None:
    """Without the guard (the original `__init__`), a fresh state's attributes stay inline
    until one is set that the shared keys cannot take: the probe must see the difference,
    or the test above could not fail."""
    original = InstanceState.__init__.__wrapped__  # type: ignore[attr-defined]
    engine = create_engine("sqlite://")
    _Base.metadata.create_all(engine)
    with Session(engine) as session:
        manager = inspect(_Parent).class_manager
        bare = _Parent.__new__(_Parent)
        state = InstanceState.__new__(InstanceState)
        original(state, bare, manager)
        state.session_id = None  # a class default, now an inline instance attribute
        assert not _has_dictionary(state)
        guarded = InstanceState(bare, manager)
        guarded.session_id = None
        assert _has_dictionary(guarded)
        session.rollback()
    engine.dispose()


def test_installing_twice_wraps_once() -> None:
    assert instance_state.install() is False
    assert not hasattr(InstanceState.__init__.__wrapped__, "__wrapped__")  # type: ignore[attr-defined]
