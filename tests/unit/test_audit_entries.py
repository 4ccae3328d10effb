"""The verifier's fast canonical entries equal the service's; the checkpoint note format."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.services import audit
from consensus.services.audit_verify import _time_text, fast_entry
from consensus.services.checkpoints import (
    CheckpointFormatError,
    checkpoint_body,
    parse_checkpoint_body,
)

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
def test_fast_entry_is_byte_for_byte_the_canonical_entry(
    seq, moment, actor, organisation, action, object_type, object_id, result, origin, payload
):
    expected = audit.canonical_entry(
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
    assert (
        fast_entry(
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
        == expected
    )


def test_values_of_unexpected_types_take_the_general_path():
    moment = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    odd = fast_entry(1, audit.format_time(moment), "7", None, "a", "b", "c", "d", "e", "{}")
    assert b'"actor":"7"' in odd  # a string where a number belongs is not silently "7"
    assert odd != fast_entry(1, audit.format_time(moment), 7, None, "a", "b", "c", "d", "e", "{}")


@given(moments, st.integers(-14 * 60, 14 * 60))
def test_time_text_equals_format_time_in_any_zone(moment, offset_minutes):
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    assert _time_text(local) == audit.format_time(moment)
    assert _time_text(moment.replace(tzinfo=None)) == audit.format_time(moment)


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
