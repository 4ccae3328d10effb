"""The ceiling of this stack on this machine: a bare Flask app on the same server.

(a) /plain returns plain text; (b) /row does one primary-key SELECT through SQLAlchemy and
renders a small template. Consensus pages are compared with (b).

The template of (b) is a file (ceiling_templates/row.html) loaded through Flask's normal
template loading, so Jinja compiles it once per worker and caches it, as it does every
Consensus template. (Until issue 23, (b) called render_template_string on every request,
which compiles the template each time and roughly halved the ceiling: every ratio to it was
flattered about 2x.)
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, render_template
from sqlalchemy import Integer, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

TEMPLATES = Path(__file__).resolve().parent / "ceiling_templates"


class Base(DeclarativeBase):
    pass


class Thing(Base):
    __tablename__ = "thing"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


def create_app() -> Flask:
    url = os.environ.get("CEILING_DATABASE_URL", "sqlite:////tmp/consensus-ceiling.sqlite")
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        if session.get(Thing, 1) is None:
            session.add(Thing(id=1, name="Vereniging van Nederlandse Gemeenten"))
            session.commit()
    app = Flask(__name__, template_folder=str(TEMPLATES))

    @app.get("/plain")
    def plain() -> tuple[str, int, dict[str, str]]:
        return "ok", 200, {"Content-Type": "text/plain"}

    @app.get("/row")
    def row() -> str:
        with Session(engine) as session:
            thing = session.execute(select(Thing).where(Thing.id == 1)).scalar_one()
            return render_template("row.html", row=thing)

    return app


app = create_app()
