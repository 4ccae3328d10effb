"""`flask --app consensus backup PATH` and `restore PATH`.

SQLite: the online backup API copies a consistent snapshot while the app keeps running
(a plain file copy of a WAL database can miss committed pages). PostgreSQL: pg_dump's
custom format and pg_restore, run with the connection from CONSENSUS_DATABASE_URL. Both
print the audit log's size and root so an operator can check that a restore brought back
exactly the log that was saved (docs/operations.md).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess  # pg_dump/pg_restore with fixed arguments  # nosec B404
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy.engine import make_url

from consensus import audit
from consensus.extensions import db


def _sqlite_path() -> Path | None:
    url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise click.ClickException("An in-memory database cannot be backed up.")
    return Path(url.database)


_SQLITE_HEADER = b"SQLite format 3\x00"
_REQUIRED_TABLES = {"alembic_version", "user_account", "audit_event", "audit_log_head"}


def _integrity_ok(path: Path) -> bool:
    """An intact SQLite file holding a Consensus database (SQLite happily opens a
    truncated or foreign file as an empty database, which a restore must never copy)."""
    with path.open("rb") as handle:
        if handle.read(len(_SQLITE_HEADER)) != _SQLITE_HEADER:
            return False
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = connection.execute("PRAGMA integrity_check").fetchone()
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError:
        return False
    finally:
        connection.close()
    return bool(row) and row[0] == "ok" and tables >= _REQUIRED_TABLES


def _pg_env_and_args() -> tuple[dict[str, str], list[str]]:
    """libpq settings from the SQLAlchemy URL; the password travels in the environment."""
    url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    args = ["--dbname", str(url.database)]
    if url.host:
        args += ["--host", str(url.host)]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", str(url.username)]
    return env, args


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise click.ClickException(f"{name} is needed for PostgreSQL (Debian: postgresql-client)")
    return path


def _echo_tree_head(prefix: str) -> None:
    db.session.expire_all()
    size, root = audit.tree_head()
    click.echo(f"{prefix}: audit log {size} events, root {root.hex()}")


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup_command(path: Path) -> None:
    """Write a consistent backup of the database to PATH (the app may keep running)."""
    if path.exists():
        raise click.ClickException(f"{path} exists; choose a new file name.")
    source = _sqlite_path()
    if source is None:
        env, args = _pg_env_and_args()
        command = [_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(path), *args]
        subprocess.run(command, env=env, check=True)  # noqa: S603 - fixed program, our own URL  # nosec B603
    else:
        db.session.remove()
        src = sqlite3.connect(source)
        dst = sqlite3.connect(path)
        try:
            with dst:
                src.backup(dst)
        finally:
            dst.close()
            src.close()
        if not _integrity_ok(path):
            raise click.ClickException("The backup failed its integrity check.")
    path.chmod(0o600)
    _echo_tree_head(f"Backup written to {path}")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def restore_command(path: Path, yes: bool) -> None:
    """Replace the database's contents with the backup in PATH (stop the app first)."""
    if not yes:
        click.confirm("This replaces every row in the database. Continue?", abort=True)
    target = _sqlite_path()
    if target is not None and not _integrity_ok(path):
        raise click.ClickException(f"{path} is not an intact Consensus database.")
    db.session.remove()
    db.engine.dispose()
    if target is None:
        env, args = _pg_env_and_args()
        command = [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            *args,
            str(path),
        ]
        subprocess.run(command, env=env, check=True)  # noqa: S603 - fixed program, our own URL  # nosec B603
    else:
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
    _echo_tree_head("Restored")


def init_app(app: Flask) -> None:
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
