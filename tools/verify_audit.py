#!/usr/bin/env python3
"""Check Consensus audit checkpoints and receipts without trusting the platform.

Needs only Python 3.9+ and OpenSSH's ssh-keygen (8.1+). It checks that

  * every checkpoint is signed by a key in your allowed_signers file (ssh-keygen -Y verify),
    and that its signed text says the same size and root as the list;
  * every checkpoint extends the one before it: an RFC 9162 consistency proof, so the log
    was only ever appended to (never rewritten, forked or rewound);
  * every receipt's event hashes to its leaf, and its inclusion proof leads to the root of
    a signed checkpoint.

Usage:
  python3 verify_audit.py --allowed-signers allowed_signers \\
      --checkpoints checkpoints.json [--checkpoints more.json] [--receipt event.json ...]

Get allowed_signers from a source you trust (and compare its fingerprint). Without
--allowed-signers the keys inside the checkpoint list are used, which only proves that the
list is consistent with itself. Exit status: 0 when everything verifies, 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

NAMESPACE = "checkpoint@consensus"
HASH_SIZE = 32


# --- RFC 9162 §2.1: hashes and proof verification ----------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list, root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and hmac.compare_digest(r, root)


def verify_consistency(m: int, n: int, old_root: bytes, new_root: bytes, proof: list) -> bool:
    """RFC 9162 §2.1.4.2."""
    if not 0 <= m <= n:
        return False
    if m == n:
        return not proof and hmac.compare_digest(old_root, new_root)
    if m == 0:
        return not proof and hmac.compare_digest(old_root, hashlib.sha256(b"").digest())
    if not proof:
        return False
    path = list(proof)
    if m & (m - 1) == 0:
        path.insert(0, old_root)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and hmac.compare_digest(fr, old_root) and hmac.compare_digest(sr, new_root)


# --- Helpers ---------------------------------------------------------------------------------


class Failure(Exception):
    """Something does not verify; the message says what."""


def unhex(value: object, what: str) -> bytes:
    try:
        raw = bytes.fromhex(str(value))
    except ValueError:
        raise Failure(f"{what} is not hexadecimal") from None
    if len(raw) != HASH_SIZE:
        raise Failure(f"{what} is not a SHA-256 hash")
    return raw


def parse_note(body: str) -> tuple[str, int, bytes, str]:
    """A checkpoint's signed text: origin, tree size, base64 root, time, one per line."""
    lines = body.split("\n")
    if len(lines) != 5 or lines[4] != "" or not lines[1].isdigit():
        raise Failure("the signed text is not a checkpoint")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except (binascii.Error, ValueError):
        raise Failure("the root in the signed text is not base64") from None
    if len(root) != HASH_SIZE:
        raise Failure("the root in the signed text is not a SHA-256 hash")
    return lines[0], int(lines[1]), root, lines[3]


class Signatures:
    """Runs ssh-keygen -Y verify for each signed text."""

    def __init__(self, keygen: str, allowed_signers: Path, principal: str) -> None:
        self.keygen, self.allowed_signers, self.principal = keygen, allowed_signers, principal
        self.workdir = Path(tempfile.mkdtemp(prefix="verify-audit-"))

    def check(self, body: str, signature: str) -> None:
        sig = self.workdir / "checkpoint.sig"
        sig.write_text(signature, encoding="ascii")
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell; the tool is the point
            [
                self.keygen,
                "-Y",
                "verify",
                "-f",
                str(self.allowed_signers),
                "-I",
                self.principal,
                "-n",
                NAMESPACE,
                "-s",
                str(sig),
            ],
            input=body.encode("utf-8"),
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).decode(errors="replace").strip()
            raise Failure(f"ssh-keygen rejects the signature ({detail})")

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def check_checkpoint(cp: dict, signatures: Signatures) -> None:
    origin, size, root, _ = parse_note(cp["body"])
    if size != cp["tree_size"] or root != unhex(cp["root_hash"], "root_hash"):
        raise Failure("the list's size or root differs from the signed text")
    signatures.check(cp["body"], cp["signature"])


# --- The checks ------------------------------------------------------------------------------


def verify_checkpoints(checkpoints: list, signatures: Signatures, report: list) -> dict:
    """Verify each checkpoint and the chain between them; returns the verified ones by id."""
    verified: dict[int, dict] = {}
    previous = None
    for cp in sorted(checkpoints, key=lambda c: c["id"]):
        name = f"checkpoint #{cp['id']} ({cp['tree_size']} events)"
        try:
            check_checkpoint(cp, signatures)
            link = cp.get("consistency")
            if previous is not None and cp["tree_size"] < previous["tree_size"]:
                raise Failure(f"smaller than checkpoint #{previous['id']}: the log was rewound")
            if link:
                if previous is not None and link["from_id"] != previous["id"]:
                    raise Failure(
                        f"links to checkpoint #{link['from_id']}, not to the one "
                        f"before it (#{previous['id']})"
                    )
                old = verified.get(link["from_id"])
                if old is None:
                    report.append(
                        f"note: {name}: the checkpoint before it (#{link['from_id']}) "
                        "is not in the list, so that link was not checked"
                    )
                else:
                    proof = [unhex(h, "proof hash") for h in link["proof"]]
                    if not verify_consistency(
                        old["tree_size"],
                        cp["tree_size"],
                        unhex(old["root_hash"], "root"),
                        unhex(cp["root_hash"], "root"),
                        proof,
                    ):
                        raise Failure(
                            f"does not extend checkpoint #{old['id']} (consistency proof fails)"
                        )
            elif previous is not None:
                raise Failure(f"has no consistency proof from checkpoint #{previous['id']}")
        except (Failure, KeyError, TypeError) as error:
            raise Failure(f"{name}: {error}") from None
        verified[cp["id"]] = cp
        previous = cp
    return verified


def verify_receipt(receipt: dict, verified: dict, signatures: Signatures, report: list) -> None:
    seq = receipt["seq"]
    entry = receipt["entry"]
    event = json.loads(entry)
    if event.get("seq") != seq or receipt["leaf_index"] != seq - 1:
        raise Failure("the event's sequence number does not match the receipt")
    leaf = leaf_hash(entry.encode("utf-8"))
    if leaf != unhex(receipt["leaf_hash"], "leaf_hash"):
        raise Failure("the event does not hash to its leaf hash: it was altered")
    proof = [unhex(h, "proof hash") for h in receipt["inclusion_proof"]]
    root = unhex(receipt["root_hash"], "root_hash")
    if not verify_inclusion(leaf, seq - 1, receipt["tree_size"], proof, root):
        raise Failure("the inclusion proof does not lead to the root")
    checkpoint = receipt.get("checkpoint")
    if checkpoint is None:
        raise Failure(
            "no signed checkpoint covers this event yet; download the receipt "
            "again after the next checkpoint"
        )
    check_checkpoint(checkpoint, signatures)
    if (
        checkpoint["tree_size"] != receipt["tree_size"]
        or checkpoint["root_hash"] != receipt["root_hash"]
    ):
        raise Failure("the proof is for another tree than the signed checkpoint")
    listed = verified.get(checkpoint["id"])
    if listed is not None and listed["body"] != checkpoint["body"]:
        raise Failure(f"checkpoint #{checkpoint['id']} differs from the one in the list")
    summary = f"event {seq} ({event.get('action')}, {event.get('time')})"
    if listed is None:
        report.append(
            f"OK {summary}: in signed checkpoint #{checkpoint['id']} (not in the "
            "checkpoint list you gave, so not linked to later checkpoints)"
        )
    else:
        latest = max(verified.values(), key=lambda c: c["id"])
        report.append(
            f"OK {summary}: in signed checkpoint #{checkpoint['id']}, which the "
            f"latest checkpoint #{latest['id']} ({latest['tree_size']} events) "
            "extends"
        )


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--allowed-signers", type=Path, help="allowed_signers file with the platform's key(s)"
    )
    parser.add_argument(
        "--checkpoints",
        type=Path,
        action="append",
        default=[],
        help="a checkpoint list (checkpoints.json); may be repeated",
    )
    parser.add_argument(
        "--receipt",
        type=Path,
        action="append",
        default=[],
        help="an event receipt (JSON); may be repeated",
    )
    parser.add_argument(
        "--principal",
        help="principal in allowed_signers (default: the one named in the list or receipt)",
    )
    parser.add_argument("--ssh-keygen", default=shutil.which("ssh-keygen") or "ssh-keygen")
    args = parser.parse_args(argv)
    if not args.checkpoints and not args.receipt:
        parser.error("give at least one --checkpoints or --receipt file")

    try:
        lists = [json.loads(p.read_text(encoding="utf-8")) for p in args.checkpoints]
        receipts = [(p, json.loads(p.read_text(encoding="utf-8"))) for p in args.receipt]
    except (OSError, ValueError) as error:
        print(f"FAILED: cannot read input: {error}")
        return 1
    principal = args.principal or next(
        (
            doc.get("principal")
            for doc in [*lists, *(r for _, r in receipts)]
            if doc.get("principal")
        ),
        None,
    )
    if not principal:
        print("FAILED: no principal; pass --principal")
        return 1

    report: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="verify-audit-keys-"))
    allowed = args.allowed_signers
    if allowed is None:
        lines = {key["allowed_signers"] for doc in lists for key in doc.get("keys", [])}
        if not lines:
            print("FAILED: no keys; pass --allowed-signers")
            return 1
        allowed = workdir / "allowed_signers"
        allowed.write_text("".join(f"{line}\n" for line in sorted(lines)), encoding="ascii")
        report.append(
            "warning: using the keys from the checkpoint list itself; pass "
            "--allowed-signers with a key you obtained independently"
        )
    signatures = Signatures(args.ssh_keygen, allowed, principal)
    failed = False
    try:
        checkpoints = {cp["id"]: cp for doc in lists for cp in doc.get("checkpoints", [])}
        try:
            verified = verify_checkpoints(list(checkpoints.values()), signatures, report)
            if verified:
                latest = max(verified.values(), key=lambda c: c["id"])
                report.append(
                    f"OK {len(verified)} checkpoint(s) signed and consistent; latest "
                    f"#{latest['id']}: {latest['tree_size']} events, root "
                    f"{latest['root_hash']}"
                )
        except Failure as error:
            report.append(f"FAILED: {error}")
            verified, failed = {}, True
        for path, receipt in receipts:
            try:
                verify_receipt(receipt, verified, signatures, report)
            except (Failure, KeyError, TypeError, ValueError) as error:
                report.append(f"FAILED: receipt {path.name}: {error}")
                failed = True
    except FileNotFoundError as error:
        report.append(f"FAILED: cannot run ssh-keygen ({error})")
        failed = True
    finally:
        signatures.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print("\n".join(report))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
