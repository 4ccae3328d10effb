"""The one writer of the log's format (audit.entry) against its specification — JSON with
sorted keys, no whitespace, ensure_ascii=False (docs/audit.md) — and the checkpoint note format."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import audit
from consensus.audit.checkpoints import (
    CheckpointFormatError,
    checkpoint_body,
    parse_checkpoint_body,
)
from consensus.audit.entry import Edge, leaf_input
from consensus.crypto import merkle

# Any text the database can hold (no lone surrogates; PostgreSQL refuses NUL in text).
texts = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))
moments = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
ids = st.none() | st.integers(min_value=1, max_value=2**62)


@settings(max_examples=400)
@given(
    seq=st.integers(1, 2**40),
    moment=moments,
    actor=ids,
    organisation=ids,
    action=texts,
    object_type=texts,
    object_id=texts,
    result=texts,
    origin=texts,
    payload=texts,
)
def test_the_entry_is_byte_for_byte_its_specification(
    seq, moment, actor, organisation, action, object_type, object_id, result, origin, payload
):
    specified = json.dumps(
        {
            "action": action,
            "actor": actor,
            "object_id": object_id,
            "object_type": object_type,
            "organisation": organisation,
            "origin": origin,
            "payload": payload,
            "result": result,
            "seq": seq,
            "time": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    entry = audit.canonical_entry(
        seq=seq,
        created_at=moment,
        actor_id=actor,
        organisation_id=organisation,
        action=action,
        object_type=object_type,
        object_id=object_id,
        result=result,
        origin=origin,
        payload=payload,
    )
    assert entry == specified
    assert (
        leaf_input(
            seq,
            audit.format_time(moment),
            actor,
            organisation,
            action,
            object_type,
            object_id,
            result,
            origin,
            payload,
        )
        == b"\x00" + specified
    )


@settings(max_examples=200)
@given(st.lists(st.binary(min_size=32, max_size=32), max_size=70), st.integers(0, 70))
def test_the_edge_gives_the_trees_root_and_resumes_from_its_frontier(leaves, cut):
    """Appending through Edge (record, the scale world) gives RFC 9162's root, and an edge
    rebuilt from a stored frontier goes on exactly where the first one stopped."""
    cut = min(cut, len(leaves))
    first = Edge(0, b"")
    for leaf in leaves[:cut]:
        first.append(leaf)
    resumed = Edge(first.size, first.frontier())
    for leaf in leaves[cut:]:
        resumed.append(leaf)
    assert resumed.size == len(leaves)
    assert resumed.root() == merkle.root(leaves)


def test_values_of_unexpected_types_take_the_general_path():
    moment = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    odd = leaf_input(1, audit.format_time(moment), "7", None, "a", "b", "c", "d", "e", "{}")
    assert b'"actor":"7"' in odd  # a string where a number belongs is not silently "7"
    assert odd != leaf_input(1, audit.format_time(moment), 7, None, "a", "b", "c", "d", "e", "{}")


@given(moments, st.integers(-14 * 60, 14 * 60))
def test_the_time_is_utc_with_microseconds_in_any_zone(moment, offset_minutes):
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    specified = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert audit.format_time(local) == specified
    assert audit.format_time(moment.replace(tzinfo=None)) == specified


def test_checkpoint_note_round_trip():
    moment = datetime(2025, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    root = bytes(range(32))
    body = checkpoint_body("consensus.example.org", 1234, root, moment)
    assert body == (
        f"consensus.example.org\n1234\n{base64.b64encode(root).decode()}\n"
        "2025-05-06T07:08:09.123456Z\n"
    )
    note = parse_checkpoint_body(body)
    assert (note.origin, note.tree_size, note.root_hash, note.time) == (
        "consensus.example.org",
        1234,
        root,
        "2025-05-06T07:08:09.123456Z",
    )


@pytest.mark.parametrize(
    "body",
    [
        "",
        "origin\n12\n" + base64.b64encode(bytes(32)).decode() + "\n",  # no time line
        "origin\n12\n" + base64.b64encode(bytes(32)).decode() + "\nT\nextra\n",
        "origin\n012\n" + base64.b64encode(bytes(32)).decode() + "\nT\n",  # leading zero
        "origin\n-1\n" + base64.b64encode(bytes(32)).decode() + "\nT\n",
        "origin\n12\n" + base64.b64encode(bytes(31)).decode() + "\nT\n",  # short root
        "origin\n12\nnot base64!\nT\n",
        "origin\n12\n" + base64.b64encode(bytes(32)).decode() + "\nT",  # no final newline
    ],
)
def test_malformed_checkpoint_notes_are_refused(body):
    with pytest.raises(CheckpointFormatError):
        parse_checkpoint_body(body)


@pytest.mark.parametrize("origin", ["", " padded", "two\nlines"])
def test_an_origin_must_be_one_clean_line(origin):
    with pytest.raises(CheckpointFormatError):
        checkpoint_body(origin, 1, bytes(32), datetime.now(UTC))
