"""Accounts: users, passwords, two-factor authentication and recovery codes."""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import hmac
import secrets
import time
from datetime import timedelta
from pathlib import Path

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from consensus import audit, events
from consensus.domain.visible import visible_line
from consensus.extensions import db
from consensus.models import PasswordResetToken, RecoveryCode, User, utcnow
from consensus.services import sessions
from consensus.services.errors import Conflict, DomainError

_hasher = PasswordHasher()
# A real hash to verify against when the email is unknown, so timing does not reveal it.
_DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))
MIN_PASSWORD_LENGTH = 12
RECOVERY_CODE_COUNT = 10
TOTP_ISSUER = "Consensus"


def normalise_email(email: str) -> str:
    return email.strip().lower()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@functools.cache
def breached_passwords() -> frozenset[str]:
    """The bundled list of commonly used and breached passwords (see consensus/data)."""
    path = Path(__file__).resolve().parent.parent / "data" / "breached-passwords.txt.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return frozenset(line.rstrip("\n") for line in handle if line.strip())


def check_password_rules(password: str) -> None:
    """Long enough to resist guessing and not on a list attackers try first (ASVS 2.1.1,
    2.1.7); no composition rules, which only make passwords harder to remember."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(
            str(_l("Use at least %(n)d characters.", n=MIN_PASSWORD_LENGTH)), field="password"
        )
    if password.lower() in breached_passwords() or len(set(password)) < 4:
        raise DomainError(
            str(_l("This password is too common: it appears in lists of leaked passwords.")),
            field="password",
        )


def find_user_by_email(email: str) -> User | None:
    return db.session.execute(
        select(User).where(User.email == normalise_email(email))
    ).scalar_one_or_none()


def authenticate(email: str, password: str) -> User | None:
    """Return the active user with this email and password, or None (never say which failed)."""
    user = find_user_by_email(email)
    if user is None or not user.active or not user.password_hash:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def password_matches(user: User, password: str) -> bool:
    """Argon2 alone, against the hash already loaded: no query and no write (a hash that
    needs rehashing says False, so the caller takes the full path of `authenticate`)."""
    if not user.active or not user.password_hash:
        return False
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    return not _hasher.check_needs_rehash(user.password_hash)


def record_login(user: User, *, method: str) -> None:
    user.last_login_at = utcnow()
    audit.record(
        "user.logged_in",
        actor=user,
        object_type="user",
        object_id=user.id,
        payload={"method": method},
    )


def record_failed_login(email: str, *, reason: str) -> None:
    """Failed logins are security events; the attempted email is kept, never the password."""
    user = find_user_by_email(email)
    audit.record(
        "user.login_failed",
        actor=None,
        object_type="user",
        object_id=user.id if user else "-",
        result="failure",
        payload={"email": normalise_email(email)[:254], "reason": reason},
    )


def record_login_throttled(email: str, *, endpoint: str) -> None:
    """Too many attempts from one address: the throttle (our lockout) answered 429."""
    audit.record(
        "user.login_throttled",
        actor=None,
        object_type="user",
        object_id="-",
        result="failure",
        payload={"email": normalise_email(email)[:254], "endpoint": endpoint[:60]},
    )


def record_logout(user: User) -> None:
    audit.record("user.logged_out", actor=user, object_type="user", object_id=user.id)


def create_user(
    *,
    actor: User | None,
    email: str,
    display_name: str,
    password: str | None,
    locale: str = "nl",
    is_admin: bool = False,
    is_facilitator: bool = False,
    active: bool = True,
) -> User:
    """Create a person. Emails are unique regardless of case."""
    email = normalise_email(email)
    if find_user_by_email(email) is not None:
        raise Conflict(str(_l("A user with this email address already exists.")), field="email")
    if password is not None:
        check_password_rules(password)
    user = User(
        email=email,
        display_name=visible_line(display_name, field="display_name"),
        password_hash=hash_password(password) if password else None,
        locale=locale,
        is_admin=is_admin,
        is_facilitator=is_facilitator,
        active=active,
        session_generation=0,
        totp_enabled=False,
    )
    db.session.add(user)
    db.session.flush()
    audit.record(
        "user.created",
        actor=actor,
        object_type="user",
        object_id=user.id,
        payload={
            "email": email,
            "display_name": user.display_name,
            "is_admin": is_admin,
            "is_facilitator": is_facilitator,
            "active": active,
        },
    )
    return user


def update_user(
    user: User,
    *,
    actor: User,
    email: str,
    display_name: str,
    is_admin: bool,
    is_facilitator: bool,
    active: bool,
) -> User:
    """Administrators change a person's details and capabilities; changes are audited."""
    email = normalise_email(email)
    other = find_user_by_email(email)
    if other is not None and other.id != user.id:
        raise Conflict(str(_l("A user with this email address already exists.")), field="email")
    if user.id == actor.id and (not is_admin or not active):
        raise DomainError(
            str(_l("You cannot remove your own administrator rights or deactivate yourself.")),
            field="is_admin" if not is_admin else "active",
        )
    before = {
        "email": user.email,
        "display_name": user.display_name,
        "is_admin": user.is_admin,
        "is_facilitator": user.is_facilitator,
        "active": user.active,
    }
    after = {
        "email": email,
        "display_name": visible_line(display_name, field="display_name"),
        "is_admin": is_admin,
        "is_facilitator": is_facilitator,
        "active": active,
    }
    changes = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    if not changes:
        return user
    user.email = after["email"]
    user.display_name = after["display_name"]
    user.is_admin = is_admin
    user.is_facilitator = is_facilitator
    if user.active and not active:
        user.session_generation += 1  # a deactivated person is logged out everywhere
        sessions.end_all(user, reason="deactivated")
    user.active = active
    action = (
        "user.roles_changed"
        if {"is_admin", "is_facilitator"} & changes.keys()
        else ("user.updated")
    )
    audit.record(
        action, actor=actor, object_type="user", object_id=user.id, payload={"changes": changes}
    )
    db.session.flush()
    return user


def security_changed(user: User, change: str) -> events.SecurityChanged:
    """The event that tells the account holder by e-mail, after the change is committed
    (consensus.notifications.send_security_notice)."""
    return events.SecurityChanged(
        user_id=user.id,
        email=user.email,
        display_name=user.display_name,
        locale=user.locale,
        change=change,
    )


def change_password(user: User, *, current_password: str, new_password: str) -> None:
    """Changing the password ends every other session of this user."""
    if not user.password_hash or authenticate(user.email, current_password) is None:
        raise DomainError(str(_l("The current password is not correct.")), field="current_password")
    try:
        check_password_rules(new_password)
    except DomainError as error:
        raise DomainError(error.message, field="new_password") from None
    user.password_hash = hash_password(new_password)
    user.session_generation += 1
    sessions.end_all(user, reason="password_changed")
    audit.record("user.password_changed", actor=user, object_type="user", object_id=user.id)
    events.record(security_changed(user, "password_changed"))
    db.session.flush()


# --- Password reset by e-mail ---------------------------------------------------------------


def request_password_reset(email: str, *, minutes: int) -> tuple[User, str] | None:
    """Issue a single-use reset token for an active account with a password.

    Returns (user, token) so the caller can mail the link, or None for an unknown or
    inactive address; the web layer answers the same in both cases (no account probing).
    Earlier unused tokens of the user are voided: only the newest link works.
    """
    user = find_user_by_email(email)
    if user is None or not user.active:
        return None
    now = utcnow()
    db.session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.user_id == user.id, PasswordResetToken.used_at.is_(None))
        .values(used_at=now)
    )
    token = secrets.token_urlsafe(32)
    db.session.add(
        PasswordResetToken(
            user_id=user.id,
            token_hash=sessions.hash_token(token),
            created_at=now,
            expires_at=now + timedelta(minutes=minutes),
        )
    )
    audit.record("user.password_reset_requested", actor=None, object_type="user", object_id=user.id)
    db.session.flush()
    return user, token


def find_reset_token(token: str) -> PasswordResetToken | None:
    """The unused, unexpired reset token for this link, or None."""
    if not token or len(token) > 100:
        return None
    found = db.session.execute(
        select(PasswordResetToken).where(
            PasswordResetToken.token_hash == sessions.hash_token(token)
        )
    ).scalar_one_or_none()
    if found is None or found.used_at is not None or found.expires_at <= utcnow():
        return None
    if not found.user.active:
        return None
    return found


def reset_password(token: str, new_password: str) -> User:
    """Set a new password with a reset link: the link is spent, every session ends.

    The token row is claimed with a conditional UPDATE, so two simultaneous uses of the
    same link cannot both succeed.
    """
    reset = find_reset_token(token)
    if reset is None:
        raise DomainError(str(_l("This link is no longer valid. Ask for a new one.")))
    try:
        check_password_rules(new_password)
    except DomainError as error:
        raise DomainError(error.message, field="new_password") from None
    claimed = db.session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.id == reset.id, PasswordResetToken.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise DomainError(str(_l("This link is no longer valid. Ask for a new one.")))
    user = reset.user
    user.password_hash = hash_password(new_password)
    user.session_generation += 1
    sessions.end_all(user, reason="password_reset")
    audit.record("user.password_reset", actor=user, object_type="user", object_id=user.id)
    events.record(security_changed(user, "password_reset"))
    db.session.flush()
    return user


def set_locale(user: User, locale: str) -> None:
    if locale not in {"nl", "en"} or user.locale == locale:
        return
    user.locale = locale
    audit.record(
        "user.locale_changed",
        actor=user,
        object_type="user",
        object_id=user.id,
        payload={"locale": locale},
    )
    db.session.flush()


# --- Two-factor authentication -------------------------------------------------------------


def new_totp_secret() -> str:
    """A fresh secret to scan. It is kept in the session until a code confirms it."""
    return pyotp.random_base32()


def provisioning_uri(email: str, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


def _accept_totp(
    user: User, code: str, *, secret: str | None = None, at: float | None = None
) -> bool:
    """Accept a code from the current or adjacent time step, each step at most once."""
    secret = secret or user.totp_secret
    if not secret:
        return False
    code = "".join(code.split())
    if not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(secret)
    now = time.time() if at is None else at
    step_now = int(now // totp.interval)
    for step in (step_now, step_now - 1, step_now + 1):
        expected = totp.at(step * totp.interval)
        if hmac.compare_digest(expected, code):
            return _claim_totp_step(user, step)
    return False


def _claim_totp_step(user: User, step: int) -> bool:
    """Spend a time step, once: a conditional UPDATE, so that of two requests (workers,
    instances) bringing the same code at the same moment only one passes. On PostgreSQL the
    second waits for the first's row lock and then finds the step spent."""
    if user.totp_last_step is not None and step <= user.totp_last_step:
        return False
    if user.id is None or user in db.session.new:  # not in the database yet: nobody races
        user.totp_last_step = step
        return True
    claimed = db.session.execute(
        update(User)
        .where(
            User.id == user.id,
            or_(User.totp_last_step.is_(None), User.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    set_committed_value(user, "totp_last_step", step)
    return True


def confirm_totp_enrolment(user: User, secret: str, code: str) -> list[str]:
    """Turn 2FA on when the code matches; returns the one-time recovery codes (shown once)."""
    if user.totp_enabled:
        raise DomainError(str(_l("Two-factor authentication is already on.")))
    if not _accept_totp(user, code, secret=secret):
        raise DomainError(str(_l("That code is not correct. Try the current code.")), field="code")
    user.totp_secret = secret
    user.totp_enabled = True
    codes = _new_recovery_codes(user)
    audit.record("user.totp_enabled", actor=user, object_type="user", object_id=user.id)
    events.record(security_changed(user, "totp_enabled"))
    db.session.flush()
    return codes


def disable_totp(user: User, *, actor: User, password: str | None = None) -> None:
    """Turn 2FA off: by the user with their password, or by an administrator (a reset)."""
    if actor.id == user.id and (password is None or authenticate(user.email, password) is None):
        raise DomainError(str(_l("The password is not correct.")), field="password")
    user.totp_enabled = False
    user.totp_secret = None
    user.totp_last_step = None
    for code in db.session.execute(
        select(RecoveryCode).where(RecoveryCode.user_id == user.id)
    ).scalars():
        db.session.delete(code)
    audit.record("user.totp_disabled", actor=actor, object_type="user", object_id=user.id)
    events.record(security_changed(user, "totp_disabled"))
    db.session.flush()


def _hash_recovery_code(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").strip().lower().encode()).hexdigest()


def _new_recovery_codes(user: User) -> list[str]:
    for old in db.session.execute(
        select(RecoveryCode).where(RecoveryCode.user_id == user.id)
    ).scalars():
        db.session.delete(old)
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = secrets.token_hex(5)
        codes.append(f"{raw[:5]}-{raw[5:]}")
        db.session.add(RecoveryCode(user_id=user.id, code_hash=_hash_recovery_code(raw)))
    return codes


def regenerate_recovery_codes(user: User) -> list[str]:
    if not user.totp_enabled:
        raise DomainError(str(_l("Two-factor authentication is off.")))
    codes = _new_recovery_codes(user)
    audit.record(
        "user.recovery_codes_regenerated", actor=user, object_type="user", object_id=user.id
    )
    events.record(security_changed(user, "recovery_codes"))
    db.session.flush()
    return codes


def verify_second_factor(user: User, code: str) -> str | None:
    """Check a TOTP code or an unused recovery code. Returns the method used, or None."""
    if user.totp_enabled and _accept_totp(user, code):
        return "totp"
    wanted = _hash_recovery_code(code)
    for recovery in db.session.execute(
        select(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    ).scalars():
        if hmac.compare_digest(recovery.code_hash, wanted):
            # Spent by a conditional UPDATE: the same code brought twice at once (two
            # workers or instances) passes once.
            used_at = utcnow()
            spent = db.session.execute(
                update(RecoveryCode)
                .where(RecoveryCode.id == recovery.id, RecoveryCode.used_at.is_(None))
                .values(used_at=used_at)
                .execution_options(synchronize_session=False)
            )
            if spent.rowcount != 1:  # type: ignore[attr-defined]
                return None
            set_committed_value(recovery, "used_at", used_at)
            audit.record(
                "user.recovery_code_used", actor=user, object_type="user", object_id=user.id
            )
            return "recovery_code"
    return None


def needs_second_factor_enrolment(user: User, require_2fa: bool) -> bool:
    """With 2FA enforced, admins, facilitators and representatives must enrol."""
    if not require_2fa or user.totp_enabled:
        return False
    if user.is_admin or user.is_facilitator:
        return True
    now = utcnow()
    return any(m.role == "representative" and m.is_valid_at(now) for m in user.memberships)
