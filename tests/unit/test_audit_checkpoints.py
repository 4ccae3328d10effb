"""The platform key, signed checkpoints, and proofs served from the stored nodes.

Signatures are checked by the real ssh-keygen and by the independent `sshsig` package;
roots and proofs against an in-memory tree and against pymerkle.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pymerkle
import pytest
import sshsig as sshsig_pkg
from sqlalchemy import func, select

from consensus import audit
from consensus.audit import checkpoints
from consensus.crypto import keystore, merkle
from consensus.extensions import db
from consensus.models import AuditEvent, Checkpoint, PlatformKey
from tests.audit_support import add_events, entries, memory_tree
from tests.tools import require_tool


def events_named(action: str) -> int:
    return db.session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
    )


# --- The key ---------------------------------------------------------------------------------


def test_keys_init_is_idempotent_and_audited(app):
    key, created = checkpoints.init_key()
    db.session.commit()
    again, created_again = checkpoints.init_key()
    db.session.commit()
    assert created and not created_again and again.id == key.id
    assert events_named("platform_key.created") == 1
    assert key.public_key.startswith("ssh-ed25519 AAAA")
    assert key.fingerprint.startswith("SHA256:")


def test_the_private_key_is_sealed_not_stored(app):
    key, _ = checkpoints.init_key()
    db.session.commit()
    private = checkpoints._private_key(key)
    seed = private.private_bytes_raw()
    for shown in (base64.b64encode(seed), base64.urlsafe_b64encode(seed), seed.hex().encode()):
        assert shown[:20] not in key.sealed_private_key.encode()
    assert key.sealed_private_key.startswith("v1:")
    # Bound to its row: the same ciphertext under another key id does not open.
    kek = checkpoints._kek()
    with pytest.raises(keystore.KeystoreError):
        keystore.open_ed25519(kek, key.sealed_private_key, b"platform-key:checkpoint:999")
    assert (Path(app.instance_path) / keystore.KEK_FILENAME).exists()


def test_rotation_retires_the_old_key_and_keeps_it(app):
    old, _ = checkpoints.init_key()
    first = checkpoints.make_checkpoint()
    new, created = checkpoints.init_key(rotate=True)
    second = checkpoints.make_checkpoint()
    db.session.commit()
    assert created and new.id != old.id
    assert old.retired_at is not None and new.retired_at is None
    assert checkpoints.active_key().id == new.id
    assert (first.key_id, second.key_id) == (old.id, new.id)
    assert events_named("platform_key.retired") == 1
    assert checkpoints.allowed_signers_file().count("\n") == 2


# --- Checkpoints -----------------------------------------------------------------------------


def test_make_checkpoint_creates_the_key_on_first_use(app):
    add_events(3)
    assert db.session.scalar(select(func.count()).select_from(PlatformKey)) == 0
    checkpoint = checkpoints.make_checkpoint()
    db.session.commit()
    size, root = audit.tree_head()
    assert checkpoint.tree_size == size == 4  # the key's own event is covered
    assert checkpoint.root_hash == root == memory_tree().root()
    note = checkpoints.parse_checkpoint_body(checkpoint.body)
    assert (note.origin, note.tree_size, note.root_hash) == (app.config["AUDIT_ORIGIN"], size, root)
    assert note.time == audit.format_time(checkpoint.created_at)


def test_an_unchanged_log_is_not_signed_again_unless_forced(app):
    add_events(2)
    first = checkpoints.make_checkpoint()
    assert checkpoints.make_checkpoint().id == first.id
    forced = checkpoints.make_checkpoint(reuse_unchanged=False)
    add_events(1)
    grown = checkpoints.make_checkpoint()
    db.session.commit()
    assert len({first.id, forced.id, grown.id}) == 3
    assert grown.tree_size == first.tree_size + 1


def test_making_a_checkpoint_writes_no_event(app):
    add_events(2)
    checkpoints.init_key()
    db.session.commit()
    before = audit.tree_head()
    checkpoints.make_checkpoint()
    db.session.commit()
    assert audit.tree_head() == before


def test_ssh_keygen_accepts_the_checkpoints(app, tmp_path):
    keygen = require_tool("ssh-keygen")
    add_events(5)
    checkpoint = checkpoints.make_checkpoint()
    checkpoints.init_key(rotate=True)
    later = checkpoints.make_checkpoint()
    db.session.commit()
    (tmp_path / "allowed_signers").write_text(checkpoints.allowed_signers_file())
    for cp in (checkpoint, later):
        (tmp_path / "cp.sig").write_text(cp.signature)
        result = subprocess.run(
            [
                keygen,
                "-Y",
                "verify",
                "-f",
                str(tmp_path / "allowed_signers"),
                "-I",
                checkpoints.principal(),
                "-n",
                "checkpoint@consensus",
                "-s",
                str(tmp_path / "cp.sig"),
            ],
            input=cp.body.encode(),
            capture_output=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert b'Good "checkpoint@consensus" signature' in result.stdout
        # Another namespace or one changed byte is refused.
        for namespace, body in (
            ("file", cp.body),
            ("checkpoint@consensus", cp.body.replace("\n", "\n\n", 1)),
        ):
            refused = subprocess.run(
                [
                    keygen,
                    "-Y",
                    "verify",
                    "-f",
                    str(tmp_path / "allowed_signers"),
                    "-I",
                    checkpoints.principal(),
                    "-n",
                    namespace,
                    "-s",
                    str(tmp_path / "cp.sig"),
                ],
                input=body.encode(),
                capture_output=True,
                check=False,
            )
            assert refused.returncode != 0


def test_the_sshsig_package_accepts_the_checkpoints(app):
    add_events(2)
    checkpoint = checkpoints.make_checkpoint()
    db.session.commit()
    key = db.session.get(PlatformKey, checkpoint.key_id)
    allowed = [sshsig_pkg.PublicKey.from_openssh_str(key.public_key)]
    sshsig_pkg.verify(
        checkpoint.body, checkpoint.signature, allowed, namespace="checkpoint@consensus"
    )
    with pytest.raises(sshsig_pkg.InvalidSignature):
        sshsig_pkg.verify(
            checkpoint.body + "x", checkpoint.signature, allowed, namespace="checkpoint@consensus"
        )


def test_a_principal_that_cannot_go_into_allowed_signers_is_replaced(app):
    app.config["AUDIT_ORIGIN"] = "Consensus audit log"
    key, _ = checkpoints.init_key()
    assert checkpoints.principal() == checkpoints.DEFAULT_PRINCIPAL
    assert checkpoints.allowed_signers_line(key).startswith("audit@consensus namespaces=")


# --- Proofs from the stored nodes ------------------------------------------------------------


def test_roots_and_proofs_match_a_memory_tree_and_pymerkle(app):
    add_events(37)
    stored = entries()
    reference = merkle.MemoryTree(stored)
    oracle = pymerkle.InmemoryTree.init_from_entries(stored)
    nodes = checkpoints.StoredNodes()
    for size in range(1, 38):
        assert merkle.root_from_nodes(size, nodes) == reference.root(size) == oracle.get_root(size)
        for seq in range(1, size + 1):
            proof = checkpoints.inclusion_proof(seq, size, nodes)
            assert proof == reference.inclusion_proof(seq - 1, size)
            assert merkle.verify_inclusion(
                merkle.leaf_hash(stored[seq - 1]), seq - 1, size, proof, oracle.get_root(size)
            )
        for old in range(0, size + 1):
            proof = checkpoints.consistency_proof(old, size, nodes)
            assert proof == reference.consistency_proof(old, size)
            assert merkle.verify_consistency(
                old, size, reference.root(old), oracle.get_root(size), proof
            )


def test_a_proof_costs_one_query(app, count_queries):
    add_events(300)
    for seq, size in ((1, 300), (150, 257), (300, 300)):
        with count_queries() as counter:
            checkpoints.inclusion_proof(seq, size)
        assert counter.count == 1, (seq, size)


def test_a_receipt_proves_inclusion_in_the_latest_checkpoint(app):
    events = add_events(9)
    checkpoint = checkpoints.make_checkpoint()
    add_events(4)  # after the checkpoint
    receipt = checkpoints.receipt(events[4])
    assert receipt["checkpoint"]["id"] == checkpoint.id
    assert receipt["tree_size"] == checkpoint.tree_size
    assert receipt["root_hash"] == checkpoint.root_hash.hex()
    entry = receipt["entry"].encode()
    assert merkle.leaf_hash(entry).hex() == receipt["leaf_hash"]
    assert merkle.verify_inclusion(
        merkle.leaf_hash(entry),
        receipt["leaf_index"],
        receipt["tree_size"],
        [bytes.fromhex(h) for h in receipt["inclusion_proof"]],
        checkpoint.root_hash,
    )


def test_a_receipt_for_an_event_after_the_last_checkpoint_is_unsigned(app):
    checkpoints.make_checkpoint()
    late = add_events(3)[-1]
    receipt = checkpoints.receipt(late)
    size, root = audit.tree_head()
    assert receipt["checkpoint"] is None
    assert (receipt["tree_size"], receipt["root_hash"]) == (size, root.hex())


def test_the_checkpoint_list_links_each_checkpoint_to_the_one_before(app):
    made = []
    for n in (3, 1, 8, 0, 5):
        add_events(n)
        made.append(checkpoints.make_checkpoint(reuse_unchanged=False))
    db.session.commit()
    listing = checkpoints.checkpoint_list()
    listed = listing["checkpoints"]
    assert [c["id"] for c in listed] == [c.id for c in made]
    assert listed[0]["consistency"] is None
    for old, new in zip(listed, listed[1:], strict=False):
        link = new["consistency"]
        assert link["from_id"] == old["id"]
        assert merkle.verify_consistency(
            old["tree_size"],
            new["tree_size"],
            bytes.fromhex(old["root_hash"]),
            bytes.fromhex(new["root_hash"]),
            [bytes.fromhex(h) for h in link["proof"]],
        )
    assert listing["keys"][0]["allowed_signers"].startswith(checkpoints.principal())

    page = checkpoints.checkpoint_list(after_id=made[1].id, limit=2)
    assert [c["id"] for c in page["checkpoints"]] == [made[2].id, made[3].id]
    assert page["checkpoints"][0]["consistency"]["from_id"] == made[1].id
    assert page["next_after_id"] == made[3].id
    latest_two = checkpoints.checkpoint_list(limit=2)["checkpoints"]
    assert [c["id"] for c in latest_two] == [made[3].id, made[4].id]
    assert latest_two[0]["consistency"]["from_id"] == made[2].id


def test_checkpoints_survive_a_new_kek_only_with_the_old_one(app, monkeypatch):
    checkpoint = checkpoints.make_checkpoint()
    db.session.commit()
    monkeypatch.setitem(app.config, "KEY_ENCRYPTION_KEY", keystore.generate_kek())
    with pytest.raises(keystore.KeystoreError):
        checkpoints.make_checkpoint(reuse_unchanged=False)
    db.session.rollback()
    assert db.session.get(Checkpoint, checkpoint.id) is not None
