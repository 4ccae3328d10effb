"""What a notification says: subject, text, accessible HTML, a deep link, the deadline as an
iCalendar attachment — in the recipient's language.

Links point at the exact page (a round, a version, the letter) under CONSENSUS_BASE_URL.
They never log anyone in and never act: following one shows a page, and the person logs in
as always when the page needs it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, has_request_context, render_template, url_for
from flask_babel import force_locale

from consensus.models import utcnow


@dataclass
class Content:
    """One notification for one person, in their language (made inside force_locale)."""

    subject: str
    paragraphs: list[str]
    link: str = ""
    link_label: str = ""
    deadline: datetime | None = None
    calendar_uid: str = ""
    calendar_title: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """The in-app notice: the first paragraph says it all."""
        return self.paragraphs[0] if self.paragraphs else self.subject


def absolute_url(endpoint: str, **values: Any) -> str:
    """An address under CONSENSUS_BASE_URL (SERVER_NAME), also outside a request (the
    clock, the worker). Without a base URL (development): the request's host, or
    http://localhost when there is no request."""
    config = current_app.config
    if has_request_context():
        return url_for(endpoint, _external=True, **values)
    anchor = values.pop("_anchor", None)
    adapter = current_app.url_map.bind(
        config.get("SERVER_NAME") or "localhost",
        script_name=config.get("APPLICATION_ROOT") or "/",
        url_scheme=config.get("PREFERRED_URL_SCHEME") or "http",
    )
    url = adapter.build(endpoint, values, force_external=True)
    return f"{url}#{anchor}" if anchor else url


def path_of(url: str) -> str:
    """The path of one of our absolute links (kept on the in-app notice)."""
    base = current_app.config.get("BASE_URL") or ""
    if base and url.startswith(base):
        return url[len(base) :] or "/"
    parts = urlsplit(url)
    return parts.path + (f"#{parts.fragment}" if parts.fragment else "")


def new_message_id() -> str:
    """Stable for the message's whole life: made once, kept on the outbox row."""
    base = current_app.config.get("SERVER_NAME") or "consensus.localhost"
    domain = base.split(":")[0]
    return f"<{uuid.uuid4().hex}@{domain}>"


def calendar_for(content: Content) -> str | None:
    """The deadline as an iCalendar (RFC 5545) event with a reminder a day before."""
    if content.deadline is None:
        return None
    # icalendar (about 8 MiB) is loaded by the mail and feed code that uses it, not by
    # every web worker at start (issue 23).
    from icalendar import Alarm, Calendar
    from icalendar import Event as CalendarEvent

    calendar = Calendar()
    calendar.add("prodid", "-//Consensus//notifications//NL")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = CalendarEvent()
    event.add("uid", content.calendar_uid or f"{uuid.uuid4().hex}@consensus")
    event.add("dtstamp", utcnow())
    event.add("dtstart", content.deadline)
    event.add("dtend", content.deadline)
    event.add("summary", content.calendar_title or content.subject)
    if content.link:
        event.add("url", content.link)
        event.add("description", content.link)
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", content.calendar_title or content.subject)
    alarm.add("trigger", timedelta(days=-1))
    event.add_component(alarm)
    calendar.add_component(event)
    return calendar.to_ical().decode()


def render(
    content: Content,
    *,
    language: str,
    name: str,
    unsubscribe_url: str | None,
    preferences_url: str,
) -> tuple[str, str]:
    """(plain text, HTML) of one message."""
    with force_locale(language):
        context = {
            "content": content,
            "name": name,
            "language": language,
            "unsubscribe_url": unsubscribe_url,
            "preferences_url": preferences_url,
            "instance_name": current_app.config.get("INSTANCE_NAME") or "Consensus",
        }
        return (
            render_template("notifications/mail.txt", **context),
            render_template("notifications/mail.html", **context),
        )


def render_digest(
    items: list[tuple[str, str, datetime]],
    *,
    language: str,
    name: str,
    preferences_url: str,
) -> tuple[str, str]:
    """(plain text, HTML) of a daily digest: (summary, link, when) per notification."""
    with force_locale(language):
        context = {
            "items": items,
            "name": name,
            "language": language,
            "preferences_url": preferences_url,
            "instance_name": current_app.config.get("INSTANCE_NAME") or "Consensus",
        }
        return (
            render_template("notifications/digest.txt", **context),
            render_template("notifications/digest.html", **context),
        )
