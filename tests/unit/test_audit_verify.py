"""`flask audit verify`: exit 0 on an intact log, exit 1 naming the first bad sequence
number (or checkpoint) after any hand edit; and events live or die with their change.

Every alteration is made with plain, portable SQL on the test database, as an intruder
(or an operator) with database access would make it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from consensus import audit
from consensus.audit import checkpoints
from consensus.audit import verify as audit_verify
from consensus.crypto import merkle, sshsig
from consensus.extensions import db
from consensus.models import (
    AuditEvent,
    AuditLogHead,
    Checkpoint,
    MerkleNode,
    Organisation,
    User,
    utcnow,
)
from consensus.services import accounts, organisations
from tests.audit_support import add_events, entries, run_sql
from tests.factories import make_user


def verify(runner):  # type: ignore[no-untyped-def]
    return runner.invoke(args=["audit", "verify"])


def first_bad(output: str) -> int | None:
    found = re.search(r"First bad sequence number: (\d+)", output)
    return int(found.group(1)) if found else None


@pytest.fixture
def log(app):
    """20 events, a checkpoint after event 12 (the key's event is no. 11), then 8 more."""
    add_events(10)
    checkpoints.init_key()  # event 11
    add_events(1)
    first = checkpoints.make_checkpoint()  # covers 1-12
    add_events(8)
    db.session.commit()
    assert first.tree_size == 12
    return first


# --- Intact ----------------------------------------------------------------------------------


def test_an_intact_log_verifies(runner, log):
    result = verify(runner)
    size, root = audit.tree_head()
    assert result.exit_code == 0, result.output
    assert f"OK: {size} events, root {root.hex()}" in result.output
    assert size == 20


def test_an_empty_log_verifies(runner, app):
    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert f"OK: 0 events, root {merkle.EMPTY_ROOT.hex()}" in result.output


def test_the_cli_makes_checkpoints_and_keys(runner, app):
    add_events(2)
    made = runner.invoke(args=["audit", "checkpoint"])
    assert made.exit_code == 0, made.output
    assert "Checkpoint #1: 3 events" in made.output
    again = runner.invoke(args=["audit", "checkpoint"])
    assert "Checkpoint #1: 3 events" in again.output  # nothing new to sign
    forced = runner.invoke(args=["audit", "checkpoint", "--force"])
    assert "Checkpoint #2: 3 events" in forced.output
    shown = runner.invoke(args=["keys", "init"])
    assert shown.exit_code == 0 and "Active checkpoint key #1" in shown.output
    rotated = runner.invoke(args=["keys", "init", "--rotate"])
    assert "Created checkpoint key #2" in rotated.output
    assert 'namespaces="checkpoint@consensus" ssh-ed25519 ' in rotated.output
    assert verify(runner).exit_code == 0


def test_the_demo_world_verifies(runner, app):
    assert runner.invoke(args=["demo"]).exit_code == 0
    assert runner.invoke(args=["audit", "checkpoint"]).exit_code == 0
    result = verify(runner)
    assert result.exit_code == 0, result.output


# --- Tampering -------------------------------------------------------------------------------


EVENT_EDITS = [
    ("UPDATE audit_event SET payload = :payload WHERE seq = 5", 5),
    ("UPDATE audit_event SET action = 'test.undone' WHERE seq = 17", 17),
    ("UPDATE audit_event SET object_id = '77' WHERE seq = 3", 3),
    ("UPDATE audit_event SET result = 'failure' WHERE seq = 20", 20),
    ("UPDATE audit_event SET origin = '203.0.113.9' WHERE seq = 1", 1),
    ("UPDATE audit_event SET organisation_id = NULL WHERE seq = 9", None),  # already NULL
    ("UPDATE audit_event SET object_type = 'other' WHERE seq = 14", 14),
    ("UPDATE audit_event SET leaf_hash = :zeros WHERE seq = 8", 8),
]


@pytest.mark.parametrize(("statement", "seq"), EVENT_EDITS)
def test_an_edited_event_is_named(runner, log, statement, seq):
    run_sql(statement, zeros=bytes(32), payload='{"n":999}')
    result = verify(runner)
    if seq is None:  # a no-op edit changes nothing
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 1, result.output
    assert first_bad(result.output) == seq
    assert f"event {seq}" in result.output


def test_an_edited_time_or_actor_is_named(runner, log):
    user = make_user()
    when = db.session.get(AuditEvent, 6).created_at
    db.session.execute(
        update(AuditEvent).where(AuditEvent.seq == 6).values(created_at=when + timedelta(seconds=1))
    )
    db.session.commit()
    assert first_bad(verify(runner).output) == 6
    db.session.execute(update(AuditEvent).where(AuditEvent.seq == 6).values(created_at=when))
    db.session.commit()
    assert verify(runner).exit_code == 0  # undone: intact again
    run_sql("UPDATE audit_event SET actor_id = :user WHERE seq = 2", user=user.id)
    assert first_bad(verify(runner).output) == 2


def test_a_deleted_event_is_named(runner, log):
    run_sql("DELETE FROM audit_event WHERE seq = 7")
    result = verify(runner)
    assert result.exit_code == 1
    assert first_bad(result.output) == 7
    assert "event 7 is missing" in result.output


def test_a_deleted_last_event_is_named(runner, log):
    run_sql("DELETE FROM audit_event WHERE seq = 20")
    result = verify(runner)
    assert result.exit_code == 1
    assert first_bad(result.output) == 20


def test_a_truncated_log_is_named(runner, log):
    """Cutting off the tail cleanly (events, their nodes, and the head) leaves only the
    signed checkpoint to tell; it names the first event that went missing."""
    tree = merkle.MemoryTree(entries()[:10])
    run_sql("DELETE FROM audit_event WHERE seq > 10")
    for level in range(6):
        for index in range(32):
            if (index + 1) << level > 10:
                run_sql(
                    'DELETE FROM merkle_node WHERE level = :l AND "index" = :i', l=level, i=index
                )
    run_sql(
        "UPDATE audit_log_head SET size = 10, frontier = :f WHERE id = 1",
        f=tree.get_node(3, 0) + tree.get_node(1, 4),
    )
    result = verify(runner)
    assert result.exit_code == 1, result.output
    assert f"checkpoint #{log.id} signed 12 events but only 10 are stored" in result.output
    assert first_bad(result.output) == 11


def test_leftover_nodes_name_the_first_missing_event(runner, log):
    run_sql("DELETE FROM audit_event WHERE seq > 10")
    result = verify(runner)
    assert result.exit_code == 1
    assert first_bad(result.output) == 11


def test_swapped_events_are_named(runner, log):
    run_sql("UPDATE audit_event SET seq = 1000 WHERE seq = 4")
    run_sql("UPDATE audit_event SET seq = 4 WHERE seq = 15")
    run_sql("UPDATE audit_event SET seq = 15 WHERE seq = 1000")
    result = verify(runner)
    assert result.exit_code == 1
    assert first_bad(result.output) == 4


def test_an_event_inserted_outside_the_application_is_named(runner, log):
    event = db.session.get(AuditEvent, 20)
    forged = dict(
        seq=21,
        created_at=utcnow(),
        actor_id=None,
        organisation_id=None,
        action="test.forged",
        object_type="thing",
        object_id="x",
        result="success",
        origin="test",
        payload="{}",
    )
    leaf = merkle.leaf_hash(audit.canonical_entry(**forged))  # a well-formed leaf
    db.session.add(AuditEvent(**forged, leaf_hash=leaf))
    db.session.commit()
    assert event is not None
    result = verify(runner)
    assert result.exit_code == 1
    assert first_bad(result.output) == 21


@pytest.mark.parametrize(
    ("level", "index", "seq"), [(0, 5, 6), (1, 2, 5), (2, 1, 5), (3, 0, 1), (4, 0, 1)]
)
def test_an_altered_merkle_node_is_named(runner, log, level, index, seq):
    run_sql(
        'UPDATE merkle_node SET hash = :h WHERE level = :l AND "index" = :i',
        h=bytes(range(32)),
        l=level,
        i=index,
    )
    result = verify(runner)
    assert result.exit_code == 1, result.output
    assert first_bad(result.output) == seq
    assert f"level {level}, index {index}" in result.output


def test_a_removed_or_extra_merkle_node_is_named(runner, log):
    run_sql('DELETE FROM merkle_node WHERE level = 1 AND "index" = 3')
    result = verify(runner)
    assert first_bad(result.output) == 7
    assert "is missing" in result.output
    run_sql(
        'INSERT INTO merkle_node (level, "index", hash) VALUES (1, 3, :h)',
        h=merkle.node_hash(
            db.session.get(MerkleNode, (0, 6)).hash, db.session.get(MerkleNode, (0, 7)).hash
        ),
    )
    assert verify(runner).exit_code == 0
    run_sql('INSERT INTO merkle_node (level, "index", hash) VALUES (2, 40, :h)', h=bytes(32))
    result = verify(runner)
    assert result.exit_code == 1
    assert first_bad(result.output) == 161  # the node covers events 161-164
    assert "beyond" in result.output


def test_an_altered_log_head_is_named(runner, log):
    head = db.session.get(AuditLogHead, 1)
    frontier = head.frontier
    run_sql(
        "UPDATE audit_log_head SET frontier = :f WHERE id = 1",
        f=frontier[:32] + bytes(32) + frontier[64:],
    )
    result = verify(runner)
    assert result.exit_code == 1
    assert "frontier" in result.output
    assert first_bad(result.output) == 17  # 20 = 16 + 4: the second subtree starts at 17
    run_sql("UPDATE audit_log_head SET frontier = :f, size = 19 WHERE id = 1", f=frontier)
    assert first_bad(verify(runner).output) == 20


@pytest.mark.parametrize(("seq", "between"), [(9, "1-12"), (15, "13-20")])
def test_a_rewrite_with_every_hash_recomputed_is_caught_by_the_checkpoint(
    runner, log, seq, between
):
    """The strongest intruder also recomputes leaves, nodes and head: only a signed root
    shows the change, narrowed down to the events since the last checkpoint that held."""
    second = checkpoints.make_checkpoint()
    db.session.commit()
    run_sql("UPDATE audit_event SET payload = :p WHERE seq = :s", p='{"n":"rewritten"}', s=seq)
    tree = merkle.MemoryTree(entries())
    for number in range(1, 21):
        run_sql(
            "UPDATE audit_event SET leaf_hash = :h WHERE seq = :s",
            h=tree.get_node(0, number - 1),
            s=number,
        )
    for level, hashes in enumerate(tree._levels):
        for index, digest in enumerate(hashes):
            run_sql(
                'UPDATE merkle_node SET hash = :h WHERE level = :l AND "index" = :i',
                h=digest,
                l=level,
                i=index,
            )
    frontier = b"".join(
        tree.get_node(level, (20 >> level) - 1)
        for level in (4, 2)  # 20 = 16 + 4
    )
    run_sql("UPDATE audit_log_head SET frontier = :f WHERE id = 1", f=frontier)
    result = verify(runner)
    assert result.exit_code == 1, result.output
    assert f"checkpoint #{log.id if seq <= 12 else second.id}" in result.output
    assert f"one of events {between}" in result.output
    assert first_bad(result.output) == int(between.split("-")[0])


@pytest.mark.parametrize("column", ["root_hash", "signature", "body", "tree_size", "created_at"])
def test_an_altered_checkpoint_is_named(runner, log, column):
    checkpoint = db.session.get(Checkpoint, log.id)
    values = {
        "root_hash": bytes(32),
        "signature": checkpoint.signature.replace("A", "B", 1),
        "body": checkpoint.body.replace("\n12\n", "\n13\n"),
        "tree_size": 13,
        "created_at": checkpoint.created_at + timedelta(hours=1),
    }
    db.session.execute(
        update(Checkpoint).where(Checkpoint.id == log.id).values({column: values[column]})
    )
    db.session.commit()
    result = verify(runner)
    assert result.exit_code == 1, result.output
    assert f"checkpoint #{log.id}" in result.output


def _signed(size: int, root: bytes) -> Checkpoint:
    """A correctly signed checkpoint for any size and root, as a rogue operator with the key
    could make: the checks must not rely on signatures alone."""
    key = checkpoints.active_key()
    moment = utcnow()
    body = checkpoints.checkpoint_body("consensus.example.org", size, root, moment)
    checkpoint = Checkpoint(
        tree_size=size,
        root_hash=root,
        created_at=moment,
        key_id=key.id,
        body=body,
        signature=sshsig.sign(checkpoints._private_key(key), body.encode(), "checkpoint@consensus"),
    )
    db.session.add(checkpoint)
    db.session.commit()
    return checkpoint


def test_a_rewound_checkpoint_is_named(runner, log):
    rewound = _signed(5, merkle.MemoryTree(entries()[:5]).root())
    result = verify(runner)
    assert result.exit_code == 1
    assert f"checkpoint #{rewound.id}" in result.output
    assert "rewound" in result.output


def test_a_forked_checkpoint_is_named(runner, log):
    fork = _signed(15, bytes(range(32)))
    result = verify(runner)
    assert result.exit_code == 1
    assert f"checkpoint #{fork.id}" in result.output


def test_a_checkpoint_by_a_retired_key_is_named(runner, log):
    retired = checkpoints.active_key()
    checkpoints.init_key(rotate=True)
    db.session.commit()
    key_id = retired.id
    size, root = audit.tree_head()
    moment = utcnow() + timedelta(seconds=5)
    body = checkpoints.checkpoint_body("consensus.example.org", size, root, moment)
    late = Checkpoint(
        tree_size=size,
        root_hash=root,
        created_at=moment,
        key_id=key_id,
        body=body,
        signature=sshsig.sign(
            checkpoints._private_key(retired), body.encode(), "checkpoint@consensus"
        ),
    )
    db.session.add(late)
    db.session.commit()
    result = verify(runner)
    assert result.exit_code == 1
    assert "after that key was retired" in result.output


# --- The chunked and the parallel pass -------------------------------------------------------


@pytest.mark.parametrize("chunk_level", [0, 1, 2, 3])
def test_every_size_verifies_with_small_chunks(app, monkeypatch, chunk_level):
    """Small chunks put chunk edges, partial chunks and checkpoints inside chunks everywhere."""
    monkeypatch.setattr(audit_verify, "CHUNK_LEVEL", chunk_level)
    monkeypatch.setattr(audit_verify, "CHUNK", 1 << chunk_level)
    monkeypatch.setattr(audit_verify, "BATCH", 3)
    checkpoints.init_key()
    for _ in range(22):
        add_events(1)
        checkpoints.make_checkpoint()
        db.session.commit()
        report = audit_verify.verify_log(workers=0)
        assert report.ok, report.problems
        assert (report.size, report.root) == audit.tree_head()
    run_sql("UPDATE audit_event SET payload = '{}' WHERE seq = 13")
    report = audit_verify.verify_log(workers=0)
    assert report.first_bad_seq == 13


def test_worker_processes_give_the_same_answers(app, monkeypatch):
    monkeypatch.setattr(audit_verify, "CHUNK_LEVEL", 2)
    monkeypatch.setattr(audit_verify, "CHUNK", 4)
    add_events(30)
    checkpoints.make_checkpoint()
    add_events(7)
    db.session.commit()
    here, there = audit_verify.verify_log(workers=0), audit_verify.verify_log(workers=2)
    assert here.ok and there.ok, (here.problems, there.problems)
    assert (there.size, there.root, there.nodes) == (here.size, here.root, here.nodes)
    assert there.workers == 2
    run_sql("UPDATE audit_event SET origin = 'elsewhere' WHERE seq = 27")
    run_sql("DELETE FROM audit_event WHERE seq = 35")
    assert audit_verify.verify_log(workers=2).first_bad_seq == 27


RANGE_EDITS = [
    # (statement, which event of the range it hits or covers, what the message names)
    ("UPDATE audit_event SET payload = '{}' WHERE seq = :seq", 0, "does not match its leaf"),
    ("UPDATE audit_event SET leaf_hash = :zeros WHERE seq = :seq", 1, "does not match its leaf"),
    ("DELETE FROM audit_event WHERE seq = :seq", 2, "is missing"),
    ('UPDATE merkle_node SET hash = :zeros WHERE level = 0 AND "index" = :seq - 1', 3, "level 0"),
    (
        'UPDATE merkle_node SET hash = :zeros WHERE level = 1 AND "index" = (:seq - 1) / 2',
        2,
        "level 1",
    ),
    ('DELETE FROM merkle_node WHERE level = 2 AND "index" = (:seq - 1) / 4', 0, "level 2"),
]


def test_workers_find_a_change_in_every_range(app, monkeypatch):
    """Ranges of 4 events, each verified by one of two worker processes: a change in any
    range (to an event, its leaf hash or a stored node at any level inside the range) is
    found there and named exactly as the in-process pass names it."""
    monkeypatch.setattr(audit_verify, "CHUNK_LEVEL", 2)
    monkeypatch.setattr(audit_verify, "CHUNK", 4)
    add_events(30)
    checkpoints.init_key()
    checkpoints.make_checkpoint()
    add_events(5)  # 36 events: nine ranges, the last one full
    db.session.commit()
    assert audit_verify.verify_log(workers=2).ok
    for number in range(9):
        statement, offset, named = RANGE_EDITS[number % len(RANGE_EDITS)]
        seq = 4 * number + 1 + offset
        with db.engine.connect() as conn:  # keep the original, to restore it afterwards
            events = conn.execute(select(AuditEvent.__table__)).mappings().all()
            nodes = conn.execute(select(MerkleNode.__table__)).mappings().all()
        run_sql(statement, seq=seq, zeros=bytes(32))
        here, there = audit_verify.verify_log(workers=0), audit_verify.verify_log(workers=2)
        assert there.workers == 2
        assert there.problems == here.problems, (number, here.problems, there.problems)
        # A node names the first event it covers.
        level = int(named.split()[1]) if named.startswith("level") else 0
        first = ((seq - 1) >> level << level) + 1
        assert there.first_bad_seq == first, (number, there.problems)
        assert named in there.problems[0].message
        run_sql("DELETE FROM audit_event")
        run_sql("DELETE FROM merkle_node")
        db.session.execute(AuditEvent.__table__.insert(), [dict(row) for row in events])
        db.session.execute(MerkleNode.__table__.insert(), [dict(row) for row in nodes])
        db.session.commit()
    assert audit_verify.verify_log(workers=2).ok


def test_a_worker_imports_no_flask_models_or_sqlalchemy():
    """A worker starts in a fresh interpreter (spawn): what its module imports is what each
    worker pays before it verifies anything."""
    probe = (
        "import json, sys\n"
        "import consensus.audit.verify_worker\n"
        "print(json.dumps(sorted(name for name in sys.modules\n"
        "    if name.split('.')[0] in ('flask', 'sqlalchemy', 'flask_sqlalchemy')\n"
        "    or name.startswith(('consensus.models', 'consensus.extensions', 'consensus.app')))))"
    )
    done = subprocess.run(  # noqa: S603 - our own probe
        [sys.executable, "-c", probe],
        cwd=Path(__file__).resolve().parents[2],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(done.stdout) == []


# --- Atomicity -------------------------------------------------------------------------------


def _state() -> tuple[int, int, int, tuple[int, bytes]]:
    return (
        db.session.scalar(select(func.count()).select_from(User)),
        db.session.scalar(select(func.count()).select_from(AuditEvent)),
        db.session.scalar(select(func.count()).select_from(MerkleNode)),
        audit.tree_head(),
    )


def test_a_service_that_fails_after_recording_leaves_no_trace(app):
    add_events(5)
    before = _state()
    with pytest.raises(RuntimeError):
        accounts.create_user(
            actor=None, email="half@example.org", display_name="Half", password=None
        )
        raise RuntimeError("something after the audit event failed")
    db.session.rollback()
    assert _state() == before
    assert accounts.find_user_by_email("half@example.org") is None
    assert audit_verify.verify_log().ok


def test_a_view_that_fails_after_recording_leaves_no_trace(app, client, login_as, monkeypatch):
    admin = make_user(is_admin=True)
    login_as(admin)
    before = _state()
    real_record = audit.record

    def record_then_fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        real_record(*args, **kwargs)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(organisations.audit, "record", record_then_fail)
    response = client.post(
        "/admin/organisations/new",
        data={
            "name": "Half Made",
            "short_name": "HM",
            "slug": "half-made",
            "kind": "other",
            "active": "y",
        },
    )
    assert response.status_code == 500
    db.session.expire_all()
    assert _state() == before
    assert db.session.scalar(select(func.count()).select_from(Organisation)) == 0
    monkeypatch.undo()
    assert audit_verify.verify_log().ok


def test_every_change_of_state_appends_one_event(app):
    organisation = organisations.create_organisation(
        actor=None, name="Vereniging", short_name="V", slug="v", kind="other"
    )
    db.session.commit()
    event = db.session.execute(
        select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)
    ).scalar_one()
    assert (event.action, event.organisation_id, event.object_id) == (
        "organisation.created",
        organisation.id,
        str(organisation.id),
    )
    assert json.loads(event.payload)["slug"] == "v"


@pytest.mark.parametrize(
    ("events", "cores", "load", "expected"),
    [
        (10_000, 8, 0.0, 0),
        (1_000_000, 8, 0.2, 8),
        (1_000_000, 32, 0.0, 8),
        (1_000_000, 4, 1.4, 4),
        (1_000_000, 4, 2.6, 2),
        (1_000_000, 2, 0.3, 2),
        (1_000_000, 2, 1.4, 2),
        (1_000_000, 2, 2.0, 0),
        (1_000_000, 2, 5.0, 0),
        (1_000_000, 1, 0.0, 0),
    ],
)
def test_workers_only_on_big_logs_and_idle_cores(monkeypatch, events, cores, load, expected):
    monkeypatch.setattr(audit_verify.os, "cpu_count", lambda: cores)
    monkeypatch.setattr(audit_verify.os, "getloadavg", lambda: (load, load, load))
    assert audit_verify.default_workers(events) == expected
