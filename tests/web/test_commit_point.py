"""One commit point (issue 16): views change data only through consensus.web.usecase.run,
and a GET request never writes.

- The grep test: no `commit()` and no audit write anywhere in consensus/web/ outside
  consensus/web/usecase.py (which holds `run` and the round clock's step).
- The GET test: every GET route of the authorization matrix, for every kind of user, runs
  no INSERT, UPDATE or DELETE. Two writes happen during a request but are not the view's
  and are excluded, each by name:
  * the round clock (consensus.web.usecase.run_the_clock): its own short transaction before
    the view, so that rounds open and close on time without cron; recognised by running
    inside that function;
  * the session touch (services.sessions.find_current): a best-effort UPDATE of
    user_session.last_seen_at at most once a minute, for the idle timeout; recognised by its
    statement.
- The signing round's letter is laid out when the round opens (by the facilitator or the
  clock) or by `rounds tick`, never by a page view.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import event, select

from consensus.extensions import db
from consensus.models import AuditEvent, JointLetter, RoundState, utcnow
from consensus.web import usecase
from tests.helpers import give_session
from tests.signing_support import make_signing_world
from tests.web.matrix_world import ORDER, build_matrix_world
from tests.web.test_authorization_matrix import MATRIX, _url

WEB = Path(__file__).resolve().parents[2] / "consensus" / "web"
THE_COMMIT_POINT = WEB / "usecase.py"
WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
SESSION_TOUCH = re.compile(r"^\s*UPDATE user_session SET last_seen_at=", re.IGNORECASE)


def test_no_commit_and_no_audit_write_in_a_view_outside_the_commit_point():
    found = []
    for path in sorted(WEB.rglob("*.py")):
        if path == THE_COMMIT_POINT:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r"\.commit\(\)|\baudit\.record\(|\bimport\s+record\b", code):
                found.append(f"{path.relative_to(WEB.parents[1])}:{number}: {line.strip()}")
    assert not found, "commit or audit write outside consensus/web/usecase.py:\n" + "\n".join(found)
    # The check reads real files: the commit point itself has both commits.
    assert THE_COMMIT_POINT.read_text().count("db.session.commit()") == 2


class Writes:
    def __init__(self) -> None:
        self.statements: list[str] = []
        self.in_clock = False


@contextmanager
def recording_writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Writes]:
    writes = Writes()
    clock = usecase.run_the_clock

    def clock_step() -> None:
        writes.in_clock = True
        try:
            clock()
        finally:
            writes.in_clock = False

    def before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if WRITE.match(statement) and not writes.in_clock and not SESSION_TOUCH.match(statement):
            writes.statements.append(statement.split("\n", 1)[0][:120])

    monkeypatch.setattr(usecase, "run_the_clock", clock_step)
    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield writes
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def _request(client, url: str, method: str = "GET") -> int:  # type: ignore[no-untyped-def]
    response = client.open(url, method=method)
    response.get_data()  # streamed answers run their queries while being read
    response.close()  # and work after the response (after_the_response) runs here
    return response.status_code


# GET routes that change state because a protocol makes them GETs, each with its reason.
GETS_THAT_WRITE = {
    # OpenID Connect: the provider sends the browser back with a GET carrying the code;
    # logging in (or refusing, audited: issue 19) is the point of the request.
    "identity.oidc_callback",
}


def test_no_get_route_in_the_matrix_writes(app: Flask, monkeypatch: pytest.MonkeyPatch):
    world = build_matrix_world()
    gets = [
        endpoint
        for endpoint, row in MATRIX.items()
        if "GET" in row and endpoint not in GETS_THAT_WRITE
    ]
    assert len(gets) > 60  # every GET route of the matrix, not a sample
    written = []
    with recording_writes(monkeypatch) as writes:
        for endpoint in gets:
            url = _url(app, world, endpoint)
            for role in ORDER:
                client = world.client_for(app, role)
                before = len(writes.statements)
                status = _request(client, url)
                written += [
                    f"GET {url} as {role} ({status}): {s}" for s in writes.statements[before:]
                ]
        # The recorder sees writes: a POST that changes the language writes it (and the
        # clock made due now writes, but inside its own step, so it is not counted here).
        client = world.client_for(app, "representative")
        before = len(writes.statements)
        assert _request(client, "/language", "POST") in {302, 400}
        for locale in ("en", "nl"):  # one of them changes the stored language
            client.post("/language", data={"locale": locale, "next": "/"})
        assert any(s.upper().startswith("UPDATE") for s in writes.statements[before:])
    assert not written, "GET requests that write:\n" + "\n".join(written)


def test_the_clock_writes_in_its_own_step_before_a_get(app: Flask, monkeypatch):
    """A round whose opening time passed opens on the next page view, by the clock's step
    (committed before the view), not by the view."""
    world = make_signing_world(open_signing=False)
    world.signing.opens_at = utcnow()
    db.session.commit()
    client = app.test_client()
    give_session(app, client, world.reps[world.orgs[0].id])
    clock_ran = []
    clock = usecase.run_the_clock
    monkeypatch.setattr(usecase, "run_the_clock", lambda: (clock_ran.append(1), clock()))
    with recording_writes(monkeypatch) as writes:
        # recording_writes wraps the patched clock: its writes are the clock's
        assert _request(client, f"/processes/{world.process.slug}/signing") == 200
    assert clock_ran
    assert writes.statements == []
    db.session.expire_all()
    assert world.signing.state == RoundState.OPEN


def _letters(round_id: int) -> list[JointLetter]:
    return list(
        db.session.execute(select(JointLetter).where(JointLetter.round_id == round_id)).scalars()
    )


def test_the_signing_letter_is_laid_out_when_the_round_opens_and_pages_only_read(
    app: Flask, monkeypatch: pytest.MonkeyPatch
):
    world = make_signing_world()  # the facilitator opened the signing round
    [letter] = _letters(world.signing.id)
    created = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "letter.created")
    ).scalar_one()
    assert created.actor_id == world.facilitator.id
    org = world.orgs[2]  # signer-held: the statement is downloaded
    client = app.test_client()
    give_session(app, client, world.reps[org.id])
    with recording_writes(monkeypatch) as writes:
        assert _request(client, f"/processes/{world.process.slug}/signing") == 200
        statement = (
            f"/processes/{world.process.slug}/signing/{org.slug}/statement.json"
            f"?key={world.keys[org.id].id}"
        )
        assert _request(client, statement) == 200
    assert writes.statements == []
    assert [x.id for x in _letters(world.signing.id)] == [letter.id]


def test_rounds_tick_lays_out_a_missing_letter(app: Flask, runner):  # type: ignore[no-untyped-def]
    """A signing round open without a letter (opened before letters were laid out at
    opening): `flask rounds tick` lays it out, so the page need not."""
    world = make_signing_world(open_signing=False)
    world.signing.state = RoundState.OPEN  # as an older version left it: open, no letter
    world.signing.opened_at = utcnow()
    world.signing.version_id = world.endorsement.version_id
    db.session.commit()
    assert _letters(world.signing.id) == []
    result = runner.invoke(args=["rounds", "tick"])
    assert result.exit_code == 0, result.output
    assert "1 letter(s) laid out." in result.output
    db.session.expire_all()
    assert len(_letters(world.signing.id)) == 1


def test_a_failed_reauthentication_is_recorded_through_the_service(app: Flask):
    world = make_signing_world()
    org = world.orgs[0]  # platform-held: signs with the password
    client = app.test_client()
    give_session(app, client, world.reps[org.id])
    response = client.post(
        f"/processes/{world.process.slug}/signing/{org.slug}/platform",
        data={f"re{org.id}-password": "not the password"},
    )
    assert response.status_code == 400
    db.session.expire_all()
    event_ = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "cosignature.reauthentication_failed")
    ).scalar_one()
    assert event_.actor_id == world.reps[org.id].id
    assert event_.organisation_id == org.id
