"""Command-line tasks: flask --app consensus <command>."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade

from consensus.config import DEMO_PASSWORD
from consensus.extensions import db
from consensus.services import accounts, demo
from consensus.services.errors import DomainError


def _refuse_demo_password(password: str) -> None:
    if not current_app.config["DEMO_PASSWORD_ALLOWED"] and password == DEMO_PASSWORD:
        raise click.ClickException("The demo password is refused in production.")


@click.command("create-admin")
@click.argument("email")
@click.option("--name", default="", help="Display name (defaults to the email address).")
@click.password_option(help="The password (asked for when not given).")
@with_appcontext
def create_admin(email: str, name: str, password: str) -> None:
    """Create a platform administrator."""
    _refuse_demo_password(password)
    try:
        user = accounts.create_user(actor=None, email=email, display_name=name or email,
                                    password=password, is_admin=True)
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from error
    db.session.commit()
    click.echo(f"Administrator {user.email} created.")


@click.command("demo")
@click.option("--password", default=DEMO_PASSWORD, show_default=True,
              help="Password for demo users that do not exist yet.")
@with_appcontext
def demo_command(password: str) -> None:
    """Load the demo world (idempotent: running it twice changes nothing)."""
    _refuse_demo_password(password)
    counts = demo.build_demo_world(password)
    db.session.commit()
    click.echo(
        f"Demo world ready: {counts['organisations']} organisations, {counts['users']} users."
    )
    click.echo(f"Log in as e.g. representative.vng@example.org with password: {password}")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@with_appcontext
def serve(host: str, port: int) -> None:
    """Development: migrate the database, load the demo world, and serve."""
    if current_app.config["PRODUCTION"]:
        raise click.ClickException("Use a WSGI server such as gunicorn in production.")
    upgrade()
    counts = demo.build_demo_world(DEMO_PASSWORD)
    db.session.commit()
    click.echo(f"Demo world: {counts['organisations']} organisations, {counts['users']} users.")
    click.echo(f"Log in at http://{host}:{port}/login as representative.vng@example.org "
               f"with password {DEMO_PASSWORD}")
    current_app.run(host=host, port=port, debug=False, use_reloader=False)


def init_app(app: Flask) -> None:
    for command in (create_admin, demo_command, serve):
        app.cli.add_command(command)
