"""The layout's header and footer are kept per viewer (consensus.web.pages.layout): every
request still shows its own address in the language switch, its own CSRF token, the
viewer's own name, links and unread count, and the current page marked in the navigation."""

from __future__ import annotations

import re

from consensus.extensions import db
from consensus.models import Notice
from tests.factories import make_user
from tests.helpers import give_session


def _next_field(html: str) -> str:
    found = re.search(r'<input type="hidden" name="next" value="([^"]*)">', html)
    assert found, "the language switch has its return address"
    return found.group(1)


def _tokens(html: str) -> set[str]:
    return set(re.findall(r'name="csrf_token" value="([^"]+)"', html))


def _current_nav(html: str) -> list[str]:
    nav = html.split('<nav class="c-nav"', 1)[1].split("</nav>", 1)[0]
    return re.findall(r'<a class="c-nav__link" href="([^"]+)" aria-current="page"', nav)


def test_each_page_keeps_its_own_return_address_and_current_item(app, client):
    user = make_user(name="Anna de Vries")
    give_session(app, client, user)
    for _ in range(2):  # the second round comes from the kept header
        about = client.get("/about?tab=2&x=%22%3E").text
        dashboard = client.get("/").text
        processes = client.get("/processes/").text
        assert _next_field(about) == "/about?tab=2&amp;x=%22%3E"
        assert _next_field(dashboard) == "/?"
        assert _next_field(processes) == "/processes/?"
        assert _current_nav(dashboard) == ["/"]
        assert _current_nav(processes) == ["/processes/"]
        assert _current_nav(about) == []
        assert "Anna de Vries" in about


def test_the_header_carries_each_sessions_own_token(app):
    anna, bram = make_user(name="Anna"), make_user(name="Bram")
    first = give_session(app, app.test_client(), anna)
    second = give_session(app, app.test_client(), bram)
    a1, b1, a2 = first.get("/about").text, second.get("/about").text, first.get("/about").text
    assert len(_tokens(a1)) == 1 and len(_tokens(b1)) == 1
    assert _tokens(a1) != _tokens(b1)
    assert "Anna" in a2 and "Bram" not in a2 and "Bram" in b1
    with first.session_transaction() as session:
        raw = session["csrf_token"]
    from itsdangerous import URLSafeTimedSerializer

    signer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="wtf-csrf-token")
    assert all(signer.loads(token) == raw for token in _tokens(a2))


def test_unread_count_and_administration_follow_the_viewer(app, client):
    """The unread count changes without an audit event (a notice read or written): it is one
    of the header's facts, so the next page shows the new count."""
    user = make_user(name="Carla")
    admin = make_user(name="Dirk", is_admin=True)
    give_session(app, client, user)
    page = client.get("/about").text
    assert 'class="c-nav__count"' not in page
    assert "/admin/" not in page
    db.session.add_all([Notice(user_id=user.id, message="a"), Notice(user_id=user.id, message="b")])
    db.session.commit()
    page = client.get("/about").text
    assert re.search(r'class="c-nav__count">2<', page)
    other = give_session(app, app.test_client(), admin)
    assert "/admin/" in other.get("/about").text
    assert "/admin/" not in client.get("/about").text


def test_signed_out_header_and_footer(client):
    for _ in range(2):
        page = client.get("/login").text
        assert _current_nav(page) == ["/login"]
        assert _next_field(page) == "/login?"
        assert 'href="/public/"' in page.split('<footer class="c-footer">', 1)[1]
