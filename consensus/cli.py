"""Command-line tasks: flask --app consensus <command>."""

from __future__ import annotations

import os
import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from consensus.audit import checkpoints
from consensus.config import DEMO_PASSWORD
from consensus.extensions import db
from consensus.services import accounts
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
        user = accounts.create_user(
            actor=None, email=email, display_name=name or email, password=password, is_admin=True
        )
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from error
    db.session.commit()
    click.echo(f"Administrator {user.email} created.")


@click.command("demo")
@click.option(
    "--password",
    default=DEMO_PASSWORD,
    show_default=True,
    help="Password for demo users that do not exist yet.",
)
@click.option(
    "--scale",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Also build the deterministic scale world (1 = ~400 organisations, 3,000 users, "
    "500 processes, 100,000 stances; N > 1 = N years of history of that same country, "
    "e.g. 10 = 5,000 processes, 1,000,000 stances; below 1 a smaller country); "
    "see docs/performance.md.",
)
@with_appcontext
def demo_command(password: str, scale: float | None) -> None:
    """Load the demo world (idempotent: running it twice changes nothing)."""
    _refuse_demo_password(password)
    from consensus.worlds import demo  # the world builder: only for this command

    counts = demo.build_demo_world(password)
    db.session.commit()
    click.echo(
        f"Demo world ready: {counts['organisations']} organisations, {counts['users']} users."
    )
    if scale is not None:
        import time

        from consensus.worlds import scale as scale_world

        if scale_world.scale_world_exists():
            click.echo("The scale world is already there; nothing to do.")
        else:
            started = time.perf_counter()
            built = scale_world.build_scale_world(
                scale, password_hash=accounts.hash_password(password)
            )
            db.session.commit()
            summary = ", ".join(f"{n:,} {name}" for name, n in built.items())
            click.echo(f"Scale world {scale:g} built in {time.perf_counter() - started:.1f} s: ")
            click.echo(f"  {summary}")
    click.echo(f"Log in as e.g. representative.vng@example.org with password: {password}")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@with_appcontext
def serve(host: str, port: int) -> None:
    """Development: migrate the database, load the demo world, and serve."""
    if current_app.config["PRODUCTION"]:
        raise click.ClickException("Use a WSGI server such as gunicorn in production.")
    from flask_migrate import upgrade  # Alembic: for commands only, not web workers

    upgrade()
    from consensus.worlds import demo

    counts = demo.build_demo_world(DEMO_PASSWORD)
    db.session.commit()
    click.echo(f"Demo world: {counts['organisations']} organisations, {counts['users']} users.")
    click.echo(
        f"Log in at http://{host}:{port}/login as representative.vng@example.org "
        f"with password {DEMO_PASSWORD}"
    )
    # Flask ignores app.run() inside its own CLI, so serve with Werkzeug directly.
    from werkzeug import serving
    from werkzeug.serving import run_simple

    # Werkzeug colours its request log with ANSI codes whatever the output is; a log sent to
    # a file, a pipe or journald then shows them raw. Colour only on a terminal (NO_COLOR off).
    serving._log_add_style = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
    run_simple(host, port, current_app._get_current_object(), threaded=True)  # type: ignore[attr-defined]


@click.group("rounds")
def rounds_group() -> None:
    """Rounds of processes."""


@rounds_group.command("tick")
@with_appcontext
def rounds_tick() -> None:
    """Open and close rounds whose time has come, and warn before deadlines; for standing
    bodies, publish the agendas that are due and tell about overdue follow-up actions (run
    from cron, e.g. every minute: the one timer an operator needs)."""
    from consensus import signing
    from consensus.notifications import deadlines
    from consensus.services import bodies, drafting, processes

    changes = processes.tick()
    # A signing round lays its letter out as it opens; one that has none yet gets it here.
    letters = signing.ensure_letters_of_open_rounds()
    # A letter whose round closed while the timestamping service was down is sealed now.
    sealed = signing.seal_letters_of_closed_rounds()
    db.session.commit()
    # Deadline warnings to the people who still have to act (their own transaction: the
    # rounds opened or closed above stand even if this fails).
    warned = deadlines.warn_deadlines()
    db.session.commit()
    # Proposed dispositions (issue 21): the reminder before the feedback period ends, and
    # the notice once a disposition report's publication time has come.
    reminded = deadlines.remind_disposition_feedback()
    announced = drafting.announce_published_dispositions()
    # Standing bodies: agendas due by their notice period, overdue actions (once each).
    agendas, told = bodies.clock()
    db.session.commit()
    click.echo(f"{changes} change(s) applied.")
    for count, what in (
        (letters, "letter(s) laid out"),
        (sealed, "letter(s) sealed"),
        (warned, "deadline warning(s) queued"),
        (reminded, "disposition feedback reminder(s) queued"),
        (announced, "disposition report(s) published"),
        (agendas, "agenda(s) published"),
        (told, "overdue notice(s) written"),
    ):
        if count:
            click.echo(f"{count} {what}.")


@click.group("notifications")
def notifications_group() -> None:
    """E-mail notifications (the outbox)."""


@notifications_group.command("deliver")
@click.option("--once", is_flag=True, help="One pass, then exit (cron); default: keep running.")
@click.option("--interval", default=10.0, show_default=True, help="Seconds between passes.")
@click.option("--limit", default=500, show_default=True, help="Most messages per pass.")
@with_appcontext
def notifications_deliver(once: bool, interval: float, limit: int) -> None:
    """Send the queued notification mail (and the digests that are due) over SMTP.
    Several workers may run at once on PostgreSQL (FOR UPDATE SKIP LOCKED)."""
    import signal
    import time

    from consensus.notifications import outbox

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    if not once:
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    while True:
        done = outbox.deliver_due(limit=limit)
        if once or done.total or done.digests:
            click.echo(
                f"{done.sent} sent, {done.retried} to retry, {done.dead} dead,"
                f" {done.digests} digest(s) made."
            )
        if once or stopping:
            return
        deadline = time.monotonic() + interval
        while not stopping and time.monotonic() < deadline:
            time.sleep(min(0.5, interval))


@click.group("actions")
def actions_group() -> None:
    """Follow-up actions of standing bodies and processes."""


@actions_group.command("notify-overdue")
@with_appcontext
def actions_notify_overdue() -> None:
    """Tell the owners of overdue follow-up actions, once per action. `rounds tick` does
    this too (with the agendas that are due); this runs only that part, e.g. by hand."""
    from consensus.domain.timeutil import local_day
    from consensus.models import utcnow
    from consensus.services import bodies

    notices = bodies.notify_overdue_actions(local_day(utcnow()))
    db.session.commit()
    click.echo(f"{notices} notice(s) written.")


@click.group("keys")
def keys_group() -> None:
    """The platform's signing keys."""


@keys_group.command("init")
@click.option("--rotate", is_flag=True, help="Retire the active key and create a new one.")
@with_appcontext
def keys_init(rotate: bool) -> None:
    """Create the checkpoint signing key if none is active (safe to run again)."""
    key, created = checkpoints.init_key(actor=None, rotate=rotate)
    db.session.commit()
    click.echo(f"{'Created' if created else 'Active'} checkpoint key #{key.id} {key.fingerprint}")
    click.echo(checkpoints.allowed_signers_line(key))


@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit trail."""


@audit_group.command("checkpoint")
@click.option("--force", is_flag=True, help="Sign even when the log has not grown.")
@with_appcontext
def audit_checkpoint(force: bool) -> None:
    """Sign the log's current size and root (run it from cron, e.g. hourly)."""
    checkpoint = checkpoints.make_checkpoint(actor=None, reuse_unchanged=not force)
    db.session.commit()
    click.echo(
        f"Checkpoint #{checkpoint.id}: {checkpoint.tree_size} events, "
        f"root {checkpoint.root_hash.hex()}"
    )


@audit_group.command("verify")
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="Processes that recompute leaf hashes (default: by log size; 0: none).",
)
@with_appcontext
def audit_verify_command(workers: int | None) -> None:
    """Recompute every leaf, node, root and checkpoint signature; exit 1 on any mismatch."""
    # Worker processes and their pool: only for this command, not in every web worker.
    from consensus.audit import verify as audit_verify

    report = audit_verify.verify_log(workers=workers)
    if not report.ok:
        for problem in report.problems:
            click.echo(f"FAILED: {problem.message}", err=True)
        if report.first_bad_seq is not None:
            click.echo(f"First bad sequence number: {report.first_bad_seq}", err=True)
        raise SystemExit(1)
    rate = report.size / report.seconds if report.seconds else 0.0
    click.echo(f"OK: {report.size} events, root {report.root.hex()}")
    click.echo(
        f"{report.checkpoints} checkpoints and {report.nodes} stored nodes verified "
        f"in {report.seconds:.2f} s ({rate:,.0f} events/s)."
    )


@click.group("identity")
def identity_group() -> None:
    """Organisations' own logins (OpenID Connect)."""


@identity_group.command("provider")
@click.argument("slug")
@click.option("--issuer", required=True, help="The provider's issuer URL.")
@click.option("--client-id", required=True)
@click.option(
    "--client-secret",
    envvar="CONSENSUS_OIDC_CLIENT_SECRET",
    default="",
    help="Stored encrypted (also from CONSENSUS_OIDC_CLIENT_SECRET); empty keeps the stored one.",
)
@click.option("--domains", required=True, help="Allowed e-mail domains, separated by spaces.")
@click.option("--acr", default="", help="Required acr value (optional).")
@click.option("--sso-required", is_flag=True, help="Refuse password logins of its members.")
@click.option("--disable", is_flag=True, help="Switch the provider off.")
@with_appcontext
def identity_provider(
    slug: str,
    issuer: str,
    client_id: str,
    client_secret: str,
    domains: str,
    acr: str,
    sso_required: bool,
    disable: bool,
) -> None:
    """Set the OpenID provider of the organisation SLUG (as the admin page does)."""
    from sqlalchemy import select

    from consensus.identity import links
    from consensus.models import Organisation

    organisation = db.session.scalar(select(Organisation).where(Organisation.slug == slug))
    if organisation is None:
        raise click.ClickException(f"No organisation with the short address {slug!r}.")
    try:
        links.configure_provider(
            organisation,
            actor=None,
            issuer=issuer,
            client_id=client_id,
            client_secret=client_secret or None,
            allowed_domains=domains,
            required_acr=acr or None,
            sso_required=sso_required,
            enabled=not disable,
        )
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from error
    db.session.commit()
    click.echo(f"{organisation.short_name} logs in through {issuer}.")


def init_app(app: Flask) -> None:
    for command in (
        create_admin,
        demo_command,
        serve,
        rounds_group,
        keys_group,
        audit_group,
        identity_group,
        notifications_group,
        actions_group,
    ):
        app.cli.add_command(command)
    from consensus.ops import backup

    backup.init_app(app)
