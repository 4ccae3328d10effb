"""tools/verify_audit.py, run as a subprocess on what the platform lets people download:
the public checkpoint list and allowed_signers, and a member's receipt."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.audit import checkpoints
from consensus.crypto import merkle
from consensus.extensions import db
from consensus.models import MembershipRole
from tests.audit_support import add_events
from tests.factories import make_membership, make_organisation, make_user
from tests.tools import require_tool

TOOL = Path(__file__).resolve().parents[2] / "tools" / "verify_audit.py"


def load_tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("verify_audit", TOOL)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def run_tool(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, check=False
    )


@pytest.fixture
def downloads(app, client, login_as, tmp_path):
    """A member's receipt, the public checkpoint list and key, saved as files."""
    require_tool("ssh-keygen")
    organisation = make_organisation("vng")
    member = make_user()
    make_membership(member, organisation, MembershipRole.REPRESENTATIVE)
    add_events(6, organisation_id=organisation.id)
    checkpoints.make_checkpoint()
    add_events(5)
    checkpoints.init_key(rotate=True)
    checkpoints.make_checkpoint()
    add_events(3)
    checkpoints.make_checkpoint()
    db.session.commit()
    login_as(member)
    files = {}
    for name, url in (
        ("receipt", "/audit/vng/4/receipt.json"),
        ("checkpoints", "/transparency/checkpoints.json"),
        ("allowed_signers", "/transparency/allowed_signers"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        files[name] = tmp_path / name
        files[name].write_bytes(response.data)
    return files


def test_the_downloads_verify(downloads):
    result = run_tool(
        "--allowed-signers",
        downloads["allowed_signers"],
        "--checkpoints",
        downloads["checkpoints"],
        "--receipt",
        downloads["receipt"],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK 3 checkpoint(s) signed and consistent" in result.stdout
    assert "OK event 4 (test.done" in result.stdout


def test_a_receipt_stands_on_its_own(downloads):
    result = run_tool(
        "--allowed-signers", downloads["allowed_signers"], "--receipt", downloads["receipt"]
    )
    assert result.returncode == 0, result.stdout
    assert "not in the checkpoint list you gave" in result.stdout


def edit(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _flip(hex_text: str) -> str:
    return ("0" if hex_text[0] != "0" else "1") + hex_text[1:]


RECEIPT_EDITS = {
    "entry": lambda r: r.update(entry=r["entry"].replace('"seq":4', '"seq":4 ')),
    "payload": lambda r: r.update(entry=r["entry"].replace('\\"n\\":0', '\\"n\\":1')),
    "proof": lambda r: r["inclusion_proof"].__setitem__(0, _flip(r["inclusion_proof"][0])),
    "index": lambda r: r.update(leaf_index=r["leaf_index"] + 1),
    "root": lambda r: r.update(root_hash=_flip(r["root_hash"])),
    "unsigned": lambda r: r.update(checkpoint=None),
    "signature": lambda r: r["checkpoint"].update(
        signature=r["checkpoint"]["signature"].replace("A", "B", 1)
    ),
}


@pytest.mark.parametrize("what", RECEIPT_EDITS)
def test_an_edited_receipt_fails(downloads, what):
    edit(downloads["receipt"], RECEIPT_EDITS[what])
    result = run_tool(
        "--allowed-signers",
        downloads["allowed_signers"],
        "--checkpoints",
        downloads["checkpoints"],
        "--receipt",
        downloads["receipt"],
    )
    assert result.returncode == 1, result.stdout
    assert "FAILED: receipt" in result.stdout


LIST_EDITS = {
    "root": lambda d: d["checkpoints"][1].update(root_hash=_flip(d["checkpoints"][1]["root_hash"])),
    "consistency": lambda d: d["checkpoints"][2]["consistency"]["proof"].__setitem__(
        0, _flip(d["checkpoints"][2]["consistency"]["proof"][0])
    ),
    "missing link": lambda d: d["checkpoints"][2].update(consistency=None),
    "skipped link": lambda d: d["checkpoints"][2]["consistency"].update(
        from_id=d["checkpoints"][0]["id"]
    ),
    "signature": lambda d: d["checkpoints"][0].update(
        signature=d["checkpoints"][0]["signature"].replace("A", "B", 1)
    ),
}


@pytest.mark.parametrize("what", LIST_EDITS)
def test_an_edited_checkpoint_list_fails(downloads, what):
    edit(downloads["checkpoints"], LIST_EDITS[what])
    result = run_tool(
        "--allowed-signers", downloads["allowed_signers"], "--checkpoints", downloads["checkpoints"]
    )
    assert result.returncode == 1, result.stdout
    assert "FAILED: checkpoint #" in result.stdout


def test_someone_elses_key_is_refused(downloads, tmp_path):
    keygen = require_tool("ssh-keygen")
    subprocess.run(
        [keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True
    )
    public = (tmp_path / "other.pub").read_text().split()
    other = tmp_path / "other_signers"
    other.write_text(
        f'consensus.example.org namespaces="checkpoint@consensus" {public[0]} {public[1]}\n'
    )
    result = run_tool("--allowed-signers", other, "--checkpoints", downloads["checkpoints"])
    assert result.returncode == 1
    assert "ssh-keygen rejects the signature" in result.stdout


def test_without_a_key_file_the_lists_own_keys_are_used_with_a_warning(downloads):
    result = run_tool("--checkpoints", downloads["checkpoints"])
    assert result.returncode == 0, result.stdout
    assert "warning: using the keys from the checkpoint list itself" in result.stdout


# --- The script's RFC 9162 code against ours ------------------------------------------------


tool = load_tool()


@settings(max_examples=150)
@given(st.integers(1, 70), st.data())
def test_the_tools_proof_checks_agree_with_ours(size, data):
    tree = merkle.MemoryTree([b"e%d" % i for i in range(size)])
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(0, size))
    inclusion = tree.inclusion_proof(index, size)
    consistency = tree.consistency_proof(old, size)
    leaf = merkle.leaf_hash(b"e%d" % index)
    corrupt = data.draw(st.booleans())
    if corrupt and inclusion:
        inclusion[0] = bytes(32)
    if corrupt and consistency:
        consistency[-1] = bytes(32)
    for theirs, ours, args in (
        (
            tool.verify_inclusion,
            merkle.verify_inclusion,
            (leaf, index, size, inclusion, tree.root()),
        ),
        (
            tool.verify_consistency,
            merkle.verify_consistency,
            (old, size, tree.root(old), tree.root(), consistency),
        ),
    ):
        assert theirs(*args) == ours(*args)
    if not corrupt:
        assert tool.verify_inclusion(leaf, index, size, inclusion, tree.root())
        assert tool.verify_consistency(old, size, tree.root(old), tree.root(), consistency)
