"""Development without CONSENSUS_MAIL_HOST: mail is written to the console and the page
says so, instead of failing silently (issue 15). Production never writes mail to the log."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

from tests.factories import make_user
from tests.security.test_passwords import inbox  # noqa: F401 - fixture
from tests.web.test_quickstart import _free_port

NOTICE = "no mail server is set up, so mail is written to the server"


def test_reset_mail_goes_to_the_log_and_the_page_says_so(app, client, caplog):
    app.config.update(MAIL_HOST="", PRODUCTION=False)
    make_user("rep@example.org")
    client.post("/language", data={"locale": "en"})
    with caplog.at_level(logging.INFO, logger="consensus.mail"):
        response = client.post(
            "/password/forgot", data={"email": "rep@example.org"}, follow_redirects=True
        )
    assert NOTICE in response.get_data(as_text=True)
    assert "To: rep@example.org" in caplog.text
    assert re.search(r"http://localhost/password/reset/[A-Za-z0-9_-]+", caplog.text)


def test_the_notice_does_not_tell_whether_the_address_is_known(app, client):
    app.config.update(MAIL_HOST="", PRODUCTION=False)
    client.post("/language", data={"locale": "en"})
    response = client.post(
        "/password/forgot", data={"email": "nobody@example.org"}, follow_redirects=True
    )
    assert NOTICE in response.get_data(as_text=True)


def test_with_a_mail_server_there_is_no_notice(app, client, inbox):  # noqa: F811
    make_user("rep@example.org")
    client.post("/language", data={"locale": "en"})
    response = client.post(
        "/password/forgot", data={"email": "rep@example.org"}, follow_redirects=True
    )
    assert NOTICE not in response.get_data(as_text=True)
    assert len(inbox.messages) == 1


def test_production_never_writes_mail_to_the_log(app, client, caplog):
    app.config.update(MAIL_HOST="", PRODUCTION=True)
    make_user("rep@example.org")
    client.post("/language", data={"locale": "en"})
    with caplog.at_level(logging.INFO, logger="consensus.mail"):
        response = client.post(
            "/password/forgot", data={"email": "rep@example.org"}, follow_redirects=True
        )
    assert response.status_code == 200
    assert NOTICE not in response.get_data(as_text=True)
    assert "/password/reset/" not in caplog.text
    assert "CONSENSUS_MAIL_HOST is empty" in caplog.text


def test_the_development_server_prints_the_mail(tmp_path):
    """The real thing: `flask run` in development with no mail settings; the reset link
    appears on the server's console."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENSUS_")}
    env["CONSENSUS_INSTANCE_PATH"] = str(tmp_path / "instance")
    flask = str(Path(sys.executable).with_name("flask"))
    for args, given in [
        (["db", "upgrade"], None),
        (["create-admin", "boss@example.org"], "a long admin password\n" * 2),
    ]:
        subprocess.run(
            [flask, "--app", "consensus", *args], env=env, input=given, text=True,
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    port = _free_port()
    log = (tmp_path / "server.log").open("w+")
    server = subprocess.Popen(
        [flask, "--app", "consensus", "run", "--port", str(port), "--no-reload"],
        env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                form = opener.open(f"{base}/password/forgot", timeout=5).read().decode()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "no server"
                time.sleep(0.3)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form)
        assert token, form
        data = urllib.parse.urlencode(
            {"csrf_token": token.group(1), "email": "boss@example.org"}
        ).encode()
        page = opener.open(f"{base}/password/forgot", data=data, timeout=10).read().decode()
        assert "naar de console van de server geschreven" in page  # Dutch, the default language
        time.sleep(0.5)
        log.seek(0)
        console = log.read()
        assert "To: boss@example.org" in console
        assert re.search(rf"http://127\.0\.0\.1:{port}/password/reset/[A-Za-z0-9_-]+", console)
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
