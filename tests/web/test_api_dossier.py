"""The dossier of a process and the open data of a published one (issue 18, item 5): every
file listed in the manifest with its SHA-256 and the hashes verify; versions are the exact
bytes; amendments and decisions as CSV (formula-safe) and JSON; once signed, the letter
and the verification bundle; signatures verified through the API."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile

from consensus.extensions import db
from consensus.models import Visibility
from consensus.services import processes
from tests.api_support import API, TokenClient, make_token
from tests.signing_support import make_signing_world, sign_as
from tests.web.matrix_world import build_matrix_world


def _unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist()}


def _verify_manifest(files: dict[str, bytes]) -> dict:
    manifest = json.loads(files["manifest.json"])
    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert set(listed) == set(files) - {"manifest.json", "SHA256SUMS"}
    for path, entry in listed.items():
        assert hashlib.sha256(files[path]).hexdigest() == entry["sha256"], path
        assert len(files[path]) == entry["size"]
    sums = dict(reversed(line.split("  ", 1)) for line in files["SHA256SUMS"].decode().splitlines())
    assert sums == {path: entry["sha256"] for path, entry in listed.items()}
    return manifest


def test_the_dossier_of_a_consultation_holds_everything_and_its_hashes_verify(app, client):
    world = build_matrix_world()
    # A formula in a rationale must open as text in a spreadsheet.
    world.amendment.rationale = '=HYPERLINK("https://example.org")'
    db.session.commit()
    api = TokenClient(client, make_token(world.users["official"], scopes="read"))
    response = api.get(f"/processes/{world.process.slug}/dossier")
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    files = _unzip(response.data)
    _verify_manifest(files)
    version = world.position.versions[0]
    assert files[f"versions/position-{world.position.id}-v1.md"] == version.body.encode()
    assert hashlib.sha256(files[f"versions/position-{world.position.id}-v1.md"]).hexdigest() == (
        version.sha256
    )
    rows = list(csv.DictReader(io.StringIO(files["amendments.csv"].decode())))
    assert [(r["number"], r["organisation"], r["state"]) for r in rows] == [
        ("1", world.participant.slug, "pending")
    ]
    assert rows[0]["rationale"].startswith("'=")
    assert json.loads(files["amendments.json"])[0]["rationale"].startswith("=")
    assert [c["body"] for c in json.loads(files["comments.json"])] == ["Eens."]
    assert "disposition/round-1.csv" in files and "disposition/round-1.json" in files
    assert "board.jsonl" in files and json.loads(files["outcomes.json"]) == []
    assert not any(name.endswith(".pdf") for name in files)  # not signed
    # A person who may not see the process gets no dossier (404: no leak).
    outsider = TokenClient(client, make_token(world.users["other_representative"]))
    assert outsider.get(f"/processes/{world.process.slug}/dossier").status_code == 404
    anonymous = TokenClient(client, None)
    assert anonymous.get(f"/processes/{world.process.slug}/dossier").status_code == 404


def test_once_signed_the_dossier_holds_the_letter_and_the_bundle(app, client):
    world = make_signing_world()
    for org in world.orgs[:2]:
        sign_as(world, org)
        db.session.commit()
    rep = world.reps[world.orgs[0].id]
    api = TokenClient(client, make_token(rep, scopes="read"))
    signatures = api.get(f"/processes/{world.process.slug}/signatures").get_json()["signatures"]
    assert [(s["organisation"], s["verified"]) for s in signatures] == [
        (o.slug, True) for o in world.orgs[:2]
    ]
    files = _unzip(api.get(f"/processes/{world.process.slug}/dossier").data)
    manifest = _verify_manifest(files)
    assert f"letter-{world.process.slug}.pdf" in files
    assert files[f"letter-{world.process.slug}.pdf"].startswith(b"%PDF")
    bundles = [name for name in files if name.startswith("verification-")]
    assert len(bundles) == 1 and zipfile.is_zipfile(io.BytesIO(files[bundles[0]]))
    outcomes = json.loads(files["outcomes.json"])
    assert outcomes[0]["adopted"] is True
    assert len(files["board.jsonl"].decode().splitlines()) == len(world.orgs)
    assert manifest["process"] == world.process.slug

    # Published: open data for everyone, linked from the public page.
    world.process.visibility = Visibility.PUBLISHED
    processes.schedule_publication(world.process, actor=world.facilitator, at=None)
    db.session.commit()
    public = client.get(f"/public/{world.process.slug}").get_data(as_text=True)
    assert f"{API}/processes/{world.process.slug}/open-data" in public
    anonymous = TokenClient(client, None)
    data = anonymous.get(f"/processes/{world.process.slug}/open-data").get_json()
    assert len(data["stances"]) == len(world.orgs)
    assert data["outcomes"][0]["adopted"] is True
    stances_csv = anonymous.get(f"/processes/{world.process.slug}/open-data/stances.csv")
    assert stances_csv.mimetype == "text/csv"
    assert len(list(csv.DictReader(io.StringIO(stances_csv.data.decode())))) == len(world.orgs)
    assert anonymous.get(f"/processes/{world.process.slug}/dossier").status_code == 200


def test_a_hidden_tally_stays_hidden_in_the_api_and_the_dossier(app, client):
    """While the round is open, a process that hides the tally shows each organisation only
    its own stance: in `stances` and in the dossier's board (as on the round page)."""
    from consensus.models import StanceKind
    from consensus.services import endorsements
    from tests.endorsement_support import make_world

    world = make_world(2, hide_tally_until_closed=True)
    mine, other = world.orgs
    for org in world.orgs:
        endorsements.cast_stance(
            world.round, actor=world.reps[org.id], organisation=org, kind=StanceKind.ENDORSE
        )
    db.session.commit()
    api = TokenClient(client, make_token(world.reps[mine.id], scopes="read"))
    stances = api.get(f"/processes/{world.process.slug}/rounds/{world.round.id}/stances")
    body = stances.get_json()
    assert body["complete"] is False and body["tally"] is None
    assert [s["organisation"] for s in body["stances"]] == [mine.slug]
    files = _unzip(api.get(f"/processes/{world.process.slug}/dossier").data)
    board = [json.loads(line) for line in files["board.jsonl"].decode().splitlines()]
    assert [line["organisation"] for line in board] == [mine.slug]
    assert other.slug not in files[f"stances/round-{world.round.sequence}.json"].decode()
    # Once the round closes, everyone sees every stance.
    processes.close_round(world.round, actor=world.facilitator)
    db.session.commit()
    files = _unzip(api.get(f"/processes/{world.process.slug}/dossier").data)
    assert len(files["board.jsonl"].decode().splitlines()) == 2
