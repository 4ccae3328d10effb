"""The public pages, the board, rule.json, and the re-tally script agreeing with the platform."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from consensus.extensions import db
from consensus.models import DecisionRule, Outcome, StanceKind
from consensus.services import endorsements as service
from consensus.services import processes
from tests.endorsement_support import make_world

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "retally.py"
KINDS = list(StanceKind)


def close_and_publish(w) -> None:
    processes.close_round(w.round, actor=w.facilitator)
    processes.schedule_publication(w.process, actor=w.facilitator, at=None)
    db.session.commit()


def retally(tmp_path: Path, client, slug: str, *args: str) -> subprocess.CompletedProcess[str]:
    board = tmp_path / "board.jsonl"
    rule = tmp_path / "rule.json"
    board.write_bytes(client.get(f"/public/{slug}/board.jsonl").data)
    rule.write_bytes(client.get(f"/public/{slug}/rule.json").data)
    return subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(SCRIPT), str(board), str(rule), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_unpublished_processes_do_not_exist_publicly(app, client):
    w = make_world()
    for path in ("", "/board.jsonl", "/rule.json"):
        assert client.get(f"/public/{w.process.slug}{path}").status_code == 404
    assert w.process.title not in client.get("/public/").text


def test_published_outcome_page_board_and_rule(app, client, tmp_path):
    w = make_world()
    a, b, c, d = w.orgs
    service.cast_stance(w.round, actor=w.reps[a.id], organisation=a, kind=StanceKind.ABSTAIN)
    service.cast_stance(w.round, actor=w.reps[a.id], organisation=a, kind=StanceKind.ENDORSE)
    service.cast_stance(
        w.round,
        actor=w.reps[b.id],
        organisation=b,
        kind=StanceKind.ENDORSE_WITH_RESERVATIONS,
        text="Alleen met extra middelen.",
    )
    service.cast_stance(w.round, actor=w.reps[c.id], organisation=c, kind=StanceKind.ABSTAIN)
    service.cast_stance(w.round, actor=w.reps[d.id], organisation=d, kind=StanceKind.ENDORSE)
    db.session.commit()
    close_and_publish(w)

    index = client.get("/public/")
    assert index.status_code == 200 and w.process.title in index.text
    page = client.get(f"/public/{w.process.slug}").text
    sentence = "3 van 4 organisaties stemden in, 1 onthield zich; geen bezwaren: consensus bereikt"
    assert sentence in page
    assert "Alleen met extra middelen." in page and "Voorbehouden" in page

    lines = [
        json.loads(x) for x in client.get(f"/public/{w.process.slug}/board.jsonl").text.splitlines()
    ]
    assert len(lines) == 5  # the superseded abstention of `a` included
    assert [x["stance"] for x in lines if x["organisation"] == a.slug] == ["abstain", "endorse"]
    first = lines[0]
    assert first["superseded_at"] is not None
    assert set(first) >= {
        "organisation",
        "stance",
        "text",
        "version",
        "round",
        "cast_at",
        "cast_by",
        "mandate",
    }
    assert len(first["version"]["sha256"]) == 64
    rule = client.get(f"/public/{w.process.slug}/rule.json").get_json()
    assert rule["decision_rule"] == "consensus" and len(rule["participants"]) == 4
    assert rule["outcomes"][0]["adopted"] is True

    result = retally(tmp_path, client, w.process.slug)
    assert result.returncode == 0, result.stderr
    assert sentence in result.stdout
    assert "Komt overeen" in result.stdout
    assert client.get("/public/retally.py").status_code == 200


def test_the_retally_script_notices_a_tampered_board(app, client, tmp_path):
    w = make_world()
    for org in w.orgs:
        service.cast_stance(
            w.round, actor=w.reps[org.id], organisation=org, kind=StanceKind.ENDORSE
        )
    db.session.commit()
    close_and_publish(w)
    board = tmp_path / "board.jsonl"
    rule = tmp_path / "rule.json"
    text = client.get(f"/public/{w.process.slug}/board.jsonl").text
    board.write_text(text.replace('"stance": "endorse"', '"stance": "object"', 1))
    rule.write_bytes(client.get(f"/public/{w.process.slug}/rule.json").data)
    result = subprocess.run(  # noqa: S603
        [sys.executable, str(SCRIPT), str(board), str(rule), "--lang", "en"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "DISAGREES" in result.stdout


RULES = [
    (DecisionRule.CONSENSUS, {"quorum": 2}),
    (DecisionRule.CONSENT, {"quorum": 3}),
    (DecisionRule.UNANIMITY, {}),
    (DecisionRule.QUALIFIED_MAJORITY, {"qualified_share_percent": 60, "quorum": 2}),
]


@pytest.mark.parametrize("seed", range(8))
def test_the_platform_and_the_retally_script_agree_on_random_processes(app, client, tmp_path, seed):
    rnd = random.Random(seed)
    rule, extra = RULES[seed % len(RULES)]
    n = rnd.randint(1, 6)
    w = make_world(n, decision_rule=rule, **extra)
    for _ in range(rnd.randint(0, 3 * n)):
        org = rnd.choice(w.orgs)
        kind = rnd.choice(KINDS)
        service.cast_stance(
            w.round, actor=w.reps[org.id], organisation=org, kind=kind, text="Tekst"
        )
    db.session.commit()
    close_and_publish(w)
    outcome = db.session.execute(select(Outcome)).scalar_one()
    result = retally(tmp_path, client, w.process.slug, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    printed = json.loads(result.stdout.splitlines()[0])
    assert printed["agrees"] is True
    assert printed["adopted"] == outcome.adopted
    assert printed["tally"]["endorsed"] == outcome.endorsed
    assert printed["tally"]["no_response"] == outcome.no_response
    # The same sentence as the page, word for word.
    page = client.get(f"/public/{w.process.slug}").text
    assert printed["explanation"] in page


def _long_board(w, stances: int) -> None:
    """A board of `stances` lines of about 1,000 bytes each (non-ASCII text included)."""
    text = "Voorbehoud over de financiële gevolgen voor de regio. " * 16
    for turn in range(stances):
        org = w.orgs[turn % len(w.orgs)]
        service.cast_stance(
            w.round,
            actor=w.reps[org.id],
            organisation=org,
            kind=StanceKind.ENDORSE_WITH_RESERVATIONS,
            text=text,
        )
    db.session.commit()
    close_and_publish(w)


def test_a_long_board_is_streamed_in_bounded_chunks_and_then_served_from_the_cache(app, client):
    """Issue 23 (lean workers): the first reader gets the board in chunks of about 64 KiB
    of whole lines (a worker never holds it as one string, nor writes it line by line);
    the next reader gets the very same bytes from the cache, with their length."""
    from consensus.web.public import BOARD_CHUNK_BYTES

    w = make_world()
    _long_board(w, 150)
    path = f"/public/{w.process.slug}/board.jsonl"
    first = client.get(path, buffered=False)
    assert first.status_code == 200 and "Content-Length" not in first.headers
    chunks = list(first.response)
    first.close()
    body = b"".join(chunks)
    assert 2 <= len(chunks) <= len(body) // BOARD_CHUNK_BYTES + 1
    assert all(chunk.endswith(b"\n") for chunk in chunks)
    assert all(len(chunk) < BOARD_CHUNK_BYTES + 4096 for chunk in chunks)
    lines = [json.loads(line) for line in body.decode("utf-8").splitlines()]
    assert len(lines) == 150
    assert [line["id"] for line in lines] == sorted(line["id"] for line in lines)
    assert "financiële" in lines[-1]["text"] and lines[-1]["superseded_at"] is None

    again = client.get(path)
    assert again.data == body
    assert again.headers["Content-Length"] == str(len(body))


def test_a_board_larger_than_the_cache_keeps_is_streamed_whole_every_time(app, client, monkeypatch):
    w = make_world()
    _long_board(w, 150)
    cache = app.extensions["consensus.web.fragments"]
    # Keeps nothing over 50 kB (the board is about 150 kB). Through monkeypatch: the app and
    # its cache are shared by the tests of this worker, which must get the bound back.
    monkeypatch.setattr(cache, "max_bytes", 4 * 50_000)
    path = f"/public/{w.process.slug}/board.jsonl"
    first = client.get(path).data
    again = client.get(path)
    assert len(first.splitlines()) == 150
    assert again.data == first and "Content-Length" not in again.headers
