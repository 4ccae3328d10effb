"""The template translation callables (consensus.web.i18n) against Flask-Babel's own."""

from __future__ import annotations

from flask import Flask, render_template_string, session
from flask_babel import refresh

TEMPLATE = (
    '{{ _("Processes") }}|{{ _("version %(n)d", n=3) }}|'
    '{{ ngettext("%(num)d comment", "%(num)d comments", 2) }}|'
    '{{ _("This process was withdrawn: %(reason)s", reason="<b>x</b>") }}'
)


def test_templates_translate_escape_and_follow_a_changed_language(app: Flask) -> None:
    with app.test_request_context("/"):
        dutch = render_template_string(TEMPLATE)
        assert dutch.split("|")[:3] == ["Trajecten", "versie 3", "2 reacties"]
        # Variables are escaped as with Jinja's own new-style gettext.
        assert "&lt;b&gt;x&lt;/b&gt;" in dutch and "<b>" not in dutch
        # A language changed mid-request (as the language switch does) takes effect at once.
        session["locale"] = "en"
        refresh()
        english = render_template_string(TEMPLATE)
        assert english.split("|")[:3] == ["Processes", "version 3", "2 comments"]


def test_the_fast_callables_say_what_flask_babels_say(app: Flask) -> None:
    from flask_babel import gettext, ngettext

    with app.test_request_context("/"):
        for msgid in ["Positions", "Rounds", "No positions yet.", "Decision rule"]:
            assert render_template_string("{{ _(m) }}", m=msgid) == gettext(msgid)
        assert render_template_string(
            '{{ ngettext("%(num)d organisation", "%(num)d organisations", 1) }}'
        ) == ngettext("%(num)d organisation", "%(num)d organisations", 1)
