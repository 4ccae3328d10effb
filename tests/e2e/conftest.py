"""A live server on loopback and a real browser (Debian's chromium via Playwright)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.tools import require_tool


def _closing(app: Flask) -> Callable[[dict[str, Any], Any], Iterable[bytes]]:
    """Each response read whole and its body closed before the server writes it.

    Werkzeug's development server closes a body (a static file's handle) only after it has
    drained the socket; when the browser resets the connection first, the handle is left
    to the garbage collector and its ResourceWarning fails whichever test runs then.
    (Gunicorn, which serves production, closes it in all cases.)
    """

    def wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        body = app(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    return wsgi


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, _closing(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    chromium = require_tool("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(locale="nl-NL")
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
