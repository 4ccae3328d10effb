"""Endorsement rounds: stances, history, mandates, delegation, version changes, tallies,
outcomes, and every way of trying to act for an organisation you do not represent."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from consensus.extensions import db
from consensus.models import (
    Delegation,
    MembershipRole,
    Notice,
    Outcome,
    RoundType,
    Stance,
    StanceKind,
    utcnow,
)
from consensus.services import endorsements as service
from consensus.services import positions, processes
from consensus.services.errors import DomainError, Forbidden
from tests.endorsement_support import make_world
from tests.factories import make_membership, make_organisation, make_user

E, R, A, OB = (
    StanceKind.ENDORSE,
    StanceKind.ENDORSE_WITH_RESERVATIONS,
    StanceKind.ABSTAIN,
    StanceKind.OBJECT,
)


def url(w, what: str = "endorsement") -> str:
    base = f"/processes/{w.process.slug}/rounds/{w.round.id}"
    return {"endorsement": f"{base}/endorsement", "cast": f"{base}/stances"}[what]


def stances_of(org) -> list[Stance]:
    return list(
        db.session.execute(
            select(Stance).where(Stance.organisation_id == org.id).order_by(Stance.id)
        ).scalars()
    )


def cast(w, org, kind, text="", user=None):
    stance = service.cast_stance(
        w.round, actor=user or w.reps[org.id], organisation=org, kind=kind, text=text
    )
    db.session.commit()
    return stance


# --- Casting and changing ---------------------------------------------------------------------


def test_representative_casts_a_stance_and_changes_it_keeping_history(app, login_as):
    w = make_world()
    org = w.orgs[0]
    client = login_as(w.reps[org.id])
    page = client.get(url(w))
    assert page.status_code == 200
    assert "Instemmen met voorbehoud" in page.text
    response = client.post(
        url(w, "cast"), data={"organisation_id": org.id, "kind": "abstain", "text": ""}
    )
    assert response.status_code == 302
    response = client.post(
        url(w, "cast"),
        data={"organisation_id": org.id, "kind": "endorse_with_reservations", "text": "Mits X."},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "Mits X." in response.text
    history = stances_of(org)
    assert [s.kind for s in history] == [A, R]
    assert history[0].superseded_at is not None and history[1].superseded_at is None
    assert history[1].version_id == w.round.version_id


@pytest.mark.parametrize("kind", ["endorse_with_reservations", "object"])
def test_reservation_and_objection_need_a_text(app, login_as, kind):
    w = make_world()
    org = w.orgs[0]
    response = login_as(w.reps[org.id]).post(
        url(w, "cast"), data={"organisation_id": org.id, "kind": kind, "text": "   "}
    )
    assert response.status_code == 422
    assert "c-error-summary" in response.text
    assert stances_of(org) == []


def test_bad_stance_kind_is_refused(app, login_as):
    w = make_world()
    org = w.orgs[0]
    response = login_as(w.reps[org.id]).post(
        url(w, "cast"), data={"organisation_id": org.id, "kind": "veto"}
    )
    assert response.status_code == 422
    assert stances_of(org) == []


def test_the_database_allows_one_current_stance_per_organisation_and_round(app):
    w = make_world()
    org = w.orgs[0]
    cast(w, org, E)
    db.session.add(
        Stance(
            round_id=w.round.id,
            organisation_id=org.id,
            version_id=w.round.version_id,
            kind=A,
            cast_by_name="x",
        )
    )
    with pytest.raises(Exception, match="(?i)unique"):
        db.session.flush()
    db.session.rollback()


def test_a_closed_round_refuses_stances(app, login_as):
    w = make_world()
    processes.close_round(w.round, actor=w.facilitator)
    db.session.commit()
    org = w.orgs[0]
    with pytest.raises(Forbidden):
        service.cast_stance(w.round, actor=w.reps[org.id], organisation=org, kind=E)
    db.session.rollback()
    response = login_as(w.reps[org.id]).post(
        url(w, "cast"), data={"organisation_id": org.id, "kind": "endorse"}
    )
    assert response.status_code == 409  # the round closed: said so (tests/web/test_refusals.py)
    assert "Uw standpunt is niet vastgelegd." in response.text
    assert stances_of(org) == []


# --- Nobody acts for an organisation they do not represent --------------------------------


def test_posting_another_organisations_id_is_refused(app, login_as):
    w = make_world()
    mine, theirs = w.orgs[0], w.orgs[1]
    their_stance = cast(w, theirs, E)
    client = login_as(w.reps[mine.id])
    response = client.post(
        url(w, "cast"),
        data={
            "organisation_id": theirs.id,
            "kind": "object",
            "text": "Ha",
            "stance_id": their_stance.id,
        },
    )
    assert response.status_code in {403, 422}
    assert [s.kind for s in stances_of(theirs)] == [E]
    assert stances_of(mine) == []


@pytest.mark.parametrize("role", [MembershipRole.OFFICIAL, MembershipRole.OBSERVER])
def test_members_without_the_mandate_cannot_endorse(app, login_as, role):
    w = make_world()
    org = w.orgs[0]
    person = make_user()
    make_membership(person, org, role)
    response = login_as(person).post(
        url(w, "cast"), data={"organisation_id": org.id, "kind": "endorse"}
    )
    assert response.status_code == 403
    assert "Standpunt vastleggen" not in login_as(person).get(url(w)).text
    assert stances_of(org) == []


def test_an_expired_representative_membership_cannot_endorse(app, login_as):
    w = make_world()
    org = w.orgs[0]
    rep = w.reps[org.id]
    rep.memberships[0].valid_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    with pytest.raises(Forbidden):
        service.cast_stance(w.round, actor=rep, organisation=org, kind=E)


def test_an_outsider_cannot_even_see_the_round(app, login_as):
    w = make_world()
    stranger = make_user()
    make_membership(stranger, make_organisation(), MembershipRole.REPRESENTATIVE)
    client = login_as(stranger)
    assert client.get(url(w)).status_code == 404
    assert (
        client.post(url(w, "cast"), data={"organisation_id": w.orgs[0].id, "kind": "endorse"})
    ).status_code == 404


# --- Delegation -------------------------------------------------------------------------------


def delegate(w, org, to, *, start=None, end=None):
    now = utcnow()
    delegation = service.create_delegation(
        actor=w.reps[org.id],
        organisation=org,
        delegate=to,
        valid_from=start or now - timedelta(minutes=5),
        valid_until=end or now + timedelta(days=3),
    )
    db.session.commit()
    return delegation


def test_a_substitute_casts_and_the_stance_says_for_whom(app, login_as):
    w = make_world()
    org = w.orgs[0]
    official = w.officials[org.id]
    delegate(w, org, official)
    client = login_as(official)
    response = client.post(
        url(w, "cast"),
        data={"organisation_id": org.id, "kind": "endorse"},
        follow_redirects=True,
    )
    assert response.status_code == 200
    stance = stances_of(org)[0]
    assert stance.delegation_id is not None
    assert stance.substitute_for_name == w.reps[org.id].display_name
    assert f"{official.display_name} (plaatsvervanger voor {w.reps[org.id].display_name})" in (
        response.text
    )
    line = next(service.board_lines(w.process))
    assert line["mandate"]["type"] == "substitute"
    assert line["mandate"]["substitute_for"] == w.reps[org.id].display_name


def test_expired_revoked_and_future_delegations_give_no_mandate(app):
    w = make_world()
    org = w.orgs[0]
    official = w.officials[org.id]
    now = utcnow()
    # An expired one cannot be made through the service; it can exist from the past.
    db.session.add(
        Delegation(
            organisation_id=org.id,
            delegator_id=w.reps[org.id].id,
            delegate_id=official.id,
            valid_from=now - timedelta(days=2),
            valid_until=now - timedelta(days=1),
        )
    )
    db.session.commit()
    future = delegate(w, org, official, start=now + timedelta(days=1), end=now + timedelta(days=2))
    assert future.valid_from > now
    with pytest.raises(Forbidden):
        service.cast_stance(w.round, actor=official, organisation=org, kind=E)
    db.session.rollback()
    active = delegate(w, org, official)
    service.revoke_delegation(active, actor=w.reps[org.id])
    db.session.commit()
    with pytest.raises(Forbidden):
        service.cast_stance(w.round, actor=official, organisation=org, kind=E)


def test_a_delegation_ends_with_the_delegators_own_mandate(app):
    w = make_world()
    org = w.orgs[0]
    official = w.officials[org.id]
    delegate(w, org, official)
    w.reps[org.id].memberships[0].valid_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    with pytest.raises(Forbidden):
        service.cast_stance(w.round, actor=official, organisation=org, kind=E)


def test_a_delegation_from_another_organisation_gives_nothing_here(app):
    w = make_world()
    mine, theirs = w.orgs[0], w.orgs[1]
    official = w.officials[mine.id]
    make_membership(official, theirs, MembershipRole.OBSERVER)
    # The representative of `theirs` cannot make an outsider substitute, and a delegation
    # for `theirs` lets the official act for `theirs` only, never for `mine`.
    delegate(w, theirs, official)
    with pytest.raises(Forbidden):
        service.cast_stance(w.round, actor=official, organisation=mine, kind=E)
    db.session.rollback()
    assert service.cast_stance(w.round, actor=official, organisation=theirs, kind=E)


def test_only_representatives_delegate_and_only_to_members(app):
    w = make_world()
    org, other = w.orgs[0], w.orgs[1]
    now = utcnow()
    with pytest.raises(Forbidden):
        service.create_delegation(
            actor=w.officials[org.id],
            organisation=org,
            delegate=w.reps[org.id],
            valid_from=now,
            valid_until=now + timedelta(days=1),
        )
    with pytest.raises(DomainError):
        service.create_delegation(
            actor=w.reps[org.id],
            organisation=org,
            delegate=w.officials[other.id],
            valid_from=now,
            valid_until=now + timedelta(days=1),
        )
    # A substitute cannot pass the mandate on.
    delegate(w, org, w.officials[org.id])
    third = make_user()
    make_membership(third, org, MembershipRole.OBSERVER)
    with pytest.raises(Forbidden):
        service.create_delegation(
            actor=w.officials[org.id],
            organisation=org,
            delegate=third,
            valid_from=now,
            valid_until=now + timedelta(days=1),
        )


def test_delegation_pages_create_and_revoke(app, login_as):
    w = make_world()
    org = w.orgs[0]
    rep, official = w.reps[org.id], w.officials[org.id]
    client = login_as(rep)
    assert client.get("/account/delegations").status_code == 200
    response = client.post(
        "/account/delegations",
        data={
            "organisation_id": org.id,
            "delegate_id": official.id,
            "valid_from": (utcnow() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "valid_until": (utcnow() + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M"),
            "note": "Tijdens vakantie",
        },
    )
    assert response.status_code == 302
    delegation = db.session.execute(select(Delegation)).scalar_one()
    assert delegation.delegate_id == official.id
    assert db.session.execute(  # the delegation's own notice (notifications carry a kind)
        select(Notice).where(Notice.user_id == official.id, Notice.kind.is_(None))
    ).scalar_one_or_none()
    # Someone from another organisation cannot revoke it, nor learn it exists.
    stranger = w.reps[w.orgs[1].id]
    assert (
        login_as(stranger).post(f"/account/delegations/{delegation.id}/revoke").status_code == 404
    )
    # Delegating to a member of another organisation is refused.
    response = login_as(rep).post(
        "/account/delegations",
        data={
            "organisation_id": org.id,
            "delegate_id": w.officials[w.orgs[1].id].id,
            "valid_from": utcnow().strftime("%Y-%m-%dT%H:%M"),
            "valid_until": (utcnow() + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert response.status_code == 422
    # An official cannot delegate an organisation's mandate at all.
    assert (
        login_as(official)
        .post("/account/delegations", data={"organisation_id": org.id, "delegate_id": rep.id})
        .status_code
        == 403
    )
    assert login_as(rep).post(f"/account/delegations/{delegation.id}/revoke").status_code == 302
    db.session.refresh(delegation)
    assert delegation.revoked_at is not None


# --- Concurrency ------------------------------------------------------------------------------


def test_two_representatives_at_once_leave_one_current_stance(app):
    """Two representatives of one organisation submit at the same moment, each through
    its own request, application context and database connection: never two current
    stances, and never a conflict page: the requests take turns (SQLite's write lock,
    PostgreSQL's lock per round and organisation), the later one supersedes the earlier."""
    from tests.helpers import give_session

    w = make_world()
    org = w.orgs[0]
    second = make_user(name="Tweede bestuurder")
    make_membership(second, org, MembershipRole.REPRESENTATIVE)
    clients = [give_session(app, app.test_client(), u) for u in (w.reps[org.id], second)]
    barrier = threading.Barrier(2)
    statuses: list[int] = []
    target, org_id = url(w, "cast"), org.id  # read here: the threads have no app context

    def submit(client, kind: str) -> None:
        barrier.wait()
        response = client.post(target, data={"organisation_id": org_id, "kind": kind})
        statuses.append(response.status_code)

    threads = [
        threading.Thread(target=submit, args=(clients[0], "endorse")),
        threading.Thread(target=submit, args=(clients[1], "abstain")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    db.session.rollback()  # a fresh snapshot: the requests committed on other connections
    rows = stances_of(org)
    current = [s for s in rows if s.superseded_at is None]
    assert len(current) == 1
    assert statuses == [302, 302]
    assert len(rows) == 2  # the earlier one superseded, kept in the history
    assert {s.cast_by_id for s in rows} <= {w.reps[org.id].id, second.id}


# --- Version changes --------------------------------------------------------------------------


def test_a_new_version_during_the_round_stops_old_stances_counting(app, login_as):
    w = make_world()
    a, b = w.orgs[0], w.orgs[1]
    cast(w, a, E)
    old_version = w.round.version_id
    version = positions.create_version(
        _position(w),
        w.process,
        actor=w.facilitator,
        body="Eerste alinea.\n\nTweede alinea, aangepast.\n",
        change_summary="Tweede alinea aangepast",
    )
    db.session.commit()
    db.session.refresh(w.round)
    assert w.round.version_id == version.id != old_version
    tally = service.round_tally(w.process, w.round)
    row = next(r for r in tally.rows if r.organisation.id == a.id)
    assert row.stale and tally.result.tally.endorsed == 0
    notices = db.session.execute(select(Notice).where(Notice.user_id == w.reps[a.id].id)).scalars()
    assert any("niet meer" in n.message or "no longer" in n.message for n in notices)
    assert db.session.execute(  # the version-change notice (notifications carry a kind)
        select(Notice).where(Notice.user_id == w.reps[b.id].id, Notice.kind.is_(None))
    ).scalar_one_or_none()
    page = login_as(w.reps[a.id]).get(url(w)).text
    assert "Telt niet meer mee" in page
    # Casting again supersedes the stale stance and counts.
    cast(w, a, E)
    assert service.round_tally(w.process, w.round).result.tally.endorsed == 1


def _position(w):
    from consensus.models import Position

    return db.session.execute(
        select(Position).where(Position.process_id == w.process.id)
    ).scalar_one()


# --- Tally, hidden tally, outcome -------------------------------------------------------------


def test_the_tally_shows_the_rule_so_far_and_a_chart(app, login_as):
    w = make_world()
    cast(w, w.orgs[0], E)
    cast(w, w.orgs[1], R, "Alleen als de financiering rond is.")
    page = login_as(w.reps[w.orgs[2].id]).get(url(w)).text
    assert "<svg" in page and 'role="img"' in page
    assert "Alleen als de financiering rond is." in page
    assert (
        "2 van 4 organisaties stemden in, 2 reageerden niet; geen bezwaren: geen consensus" in page
    )
    assert 'hx-trigger="every 15s"' in page
    fragment = login_as(w.reps[w.orgs[2].id]).get(url(w) + "/tally", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'id="tally"' in fragment.text
    # Without htmx the fragment address sends you to the page.
    assert login_as(w.reps[w.orgs[2].id]).get(url(w) + "/tally").status_code == 302


def test_a_hidden_tally_shows_only_your_own_stance_until_closing(app, login_as):
    w = make_world(hide_tally_until_closed=True)
    a, b = w.orgs[0], w.orgs[1]
    cast(w, a, OB, "Geheim bezwaar")
    other = login_as(w.reps[b.id]).get(url(w)).text
    assert "Geheim bezwaar" not in other
    assert "every 15s" not in other
    assert "Gereageerd" in other
    assert "Geheim bezwaar" in login_as(w.reps[a.id]).get(url(w)).text
    facilitator_view = login_as(w.facilitator).get(url(w)).text
    assert "Geheim bezwaar" not in facilitator_view
    status = processes.response_status(w.process, w.round)
    assert [s.detail for s in status if s.acted] == [""]
    processes.close_round(w.round, actor=w.facilitator)
    db.session.commit()
    assert "Geheim bezwaar" in login_as(w.reps[b.id]).get(url(w)).text


def test_closing_fixes_the_outcome_with_an_explanation(app, login_as):
    w = make_world()
    a, b, c, d = w.orgs
    cast(w, a, E)
    cast(w, b, R, "Met voorbehoud over de planning.")
    cast(w, c, A)
    cast(w, d, E)
    processes.close_round(w.round, actor=w.facilitator)
    db.session.commit()
    outcome = db.session.execute(select(Outcome)).scalar_one()
    assert (outcome.adopted, outcome.endorsed, outcome.abstained, outcome.with_reservations) == (
        True,
        3,
        1,
        1,
    )
    assert outcome.checkpoint_id is not None
    page = login_as(w.reps[a.id]).get(url(w)).text
    assert "3 van 4 organisaties stemden in, 1 onthield zich; geen bezwaren: consensus bereikt" in (
        page
    )
    # The numbers never move again, whatever happens to the process afterwards.
    with pytest.raises(Forbidden):
        service.cast_stance(w.round, actor=w.reps[a.id], organisation=a, kind=OB, text="Te laat")


def test_the_facilitator_writes_the_statement_others_cannot(app, login_as):
    w = make_world()
    cast(w, w.orgs[0], E)
    processes.close_round(w.round, actor=w.facilitator)
    db.session.commit()
    path = f"/processes/{w.process.slug}/rounds/{w.round.id}/outcome"
    rep = w.reps[w.orgs[0].id]
    assert login_as(rep).post(path, data={"statement": "Nee"}).status_code == 403
    review = (utcnow() + timedelta(days=365)).date().isoformat()
    response = login_as(w.facilitator).post(
        path, data={"statement": "De koepels **stemmen in**.", "review_on": review}
    )
    assert response.status_code == 302
    outcome = db.session.execute(select(Outcome)).scalar_one()
    assert outcome.statement.startswith("De koepels") and outcome.review_on.isoformat() == review
    page = login_as(rep).get(url(w)).text
    assert "<strong>stemmen in</strong>" in page


def test_a_stance_post_ends_its_work_with_the_commit(app, login_as):
    """Nothing is read after the commit: on SQLite each transaction of a POST takes the one
    write lock, and a read afterwards (a name for the message, the user for the headers)
    would hold it again until the response is sent, serialising every other writer."""
    w = make_world()
    org = w.orgs[0]
    client = login_as(w.reps[org.id])
    form = {"organisation_id": org.id, "kind": "endorse", "text": ""}
    client.post(url(w, "cast"), data=form)  # the session's once-a-minute touch, if due
    events: list[str] = []
    engine = db.engine
    listeners = {
        "before_cursor_execute": lambda *args: events.append("statement"),
        "commit": lambda *args: events.append("COMMIT"),
    }
    for name, listener in listeners.items():
        event.listen(engine, name, listener)
    try:
        response = client.post(url(w, "cast"), data=form)
    finally:
        for name, listener in listeners.items():
            event.remove(engine, name, listener)
    assert response.status_code == 302
    assert "COMMIT" in events
    assert events[-1] == "COMMIT", events[events.index("COMMIT") :]
    assert f"Vastgelegd: {org.name}" in client.get(url(w)).text  # the message still names it


def _outer(statement: str) -> str:
    """The statement without its parenthesised parts (e.g. the unread-messages count in the
    session lookup's column list), so its first FROM is the outer query's."""
    while True:
        inner = re.sub(r"\([^()]*\)", "", statement)
        if inner == statement:
            return statement
        statement = inner


def test_a_stance_posts_first_reads_are_not_made_inside_the_write_lock(app, login_as):
    """SQLite: the session lookup and the round clock read in a short transaction of their
    own, ended before the view's transaction (the one that takes the write lock) begins.
    PostgreSQL has no such lock and keeps one transaction."""
    w = make_world()
    org = w.orgs[0]
    client = login_as(w.reps[org.id])
    form = {"organisation_id": org.id, "kind": "endorse", "text": ""}
    target = url(w, "cast")
    client.post(target, data=form)  # the session's once-a-minute touch, if due
    db.session.commit()  # the test's own reads end: the request starts afresh
    log: list[str] = []
    engine = db.engine
    listeners = {
        "before_cursor_execute": lambda conn, cursor, statement, *rest: log.append(
            statement.split()[0] + " " + _outer(statement).split("FROM")[1].split()[0]
            if statement.startswith("SELECT") and "FROM" in _outer(statement)
            else statement.split()[0]
        ),
        "begin": lambda *args: log.append("BEGIN"),
        "commit": lambda *args: log.append("COMMIT"),
    }
    for name, listener in listeners.items():
        event.listen(engine, name, listener)
    try:
        assert client.post(target, data=form).status_code == 302
    finally:
        for name, listener in listeners.items():
            event.remove(engine, name, listener)
    if engine.dialect.name == "sqlite":
        assert log[:3] == ["BEGIN", "SELECT user_session", "COMMIT"], log
        writes = log.index("INSERT")
        view_begins = max(i for i, entry in enumerate(log[:writes]) if entry == "BEGIN")
        assert "SELECT user_session" not in log[view_begins:]
        assert "COMMIT" not in log[view_begins:-1]  # the view's work: one transaction
    else:
        assert log.count("BEGIN") == 1 and log.count("COMMIT") == 1, log
    assert len(stances_of(org)) == 2


def test_the_tally_page_query_count_does_not_grow_with_organisations(app, login_as, page_queries):
    counts = []
    for n in (3, 12):
        w = make_world(n)
        for org in w.orgs[: n - 1]:
            cast(w, org, E if org.id % 2 else R, "Voorbehoud")
        client = login_as(w.reps[w.orgs[0].id])
        counts.append(page_queries(client, url(w)).count)
    assert counts[0] == counts[1], counts


def test_status_table_and_dashboard_know_who_has_acted(app, login_as):
    w = make_world()
    cast(w, w.orgs[0], E)
    statuses = processes.response_status(w.process, w.round)
    acted = {s.organisation.id: s for s in statuses if s.acted}
    assert set(acted) == {w.orgs[0].id}
    assert acted[w.orgs[0].id].detail == "Instemmen"
    todo, _ = processes.dashboard_items(w.reps[w.orgs[0].id])
    assert [item.acted for item in todo] == [True]


def test_a_round_without_an_endorsement_type_has_no_tally_page(app, login_as):
    w = make_world(round_types=(RoundType.CONSULTATION,))
    assert login_as(w.facilitator).get(url(w)).status_code == 404


def test_casting_a_stance_asks_only_about_the_voters_own_organisations(
    app, login_as, count_queries
):
    """A changing request holds SQLite's write lock: it does not read the whole list of
    participants (hundreds at national scale) to check the one organisation voting."""
    w = make_world(n=6)
    org = w.orgs[0]
    client = login_as(w.reps[org.id])
    with count_queries() as counter:
        response = client.post(url(w, "cast"), data={"organisation_id": org.id, "kind": "endorse"})
    assert response.status_code == 302
    assert [s.kind for s in stances_of(org)] == [E]
    reads = [s for s in counter.statements if "FROM participation" in s]
    assert reads, "the POST must check that the organisation takes part"
    assert all("participation.organisation_id IN" in s for s in reads), reads
