"""User accounts: creation, disabling and login (the CLI and the login function use these)."""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import itertools
import math
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from invoiceflow.auth import Token, issue_token
from invoiceflow.errors import BadRequest, NotFound, TooManyRequests, Unauthorized, Unavailable
from invoiceflow.passwords import hash_password, verify_password
from invoiceflow.settings import Settings
from invoiceflow.stores.protocols import LoginPolicy, Repository, User

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: the one answer to every failed login: wrong email, wrong password and disabled look alike
LOGIN_FAILED = "wrong email or password"


def repository(settings: Settings) -> Repository:
    from invoiceflow.stores import open_repository

    repo = open_repository(settings.database_url)
    repo.migrate()
    return repo


def add_user(repo: Repository, email: str, password: str) -> User:
    email = email.strip()
    if not _EMAIL.match(email) or len(email) > 254:
        raise BadRequest(f"{email!r} is not an email address")
    user = repo.add_user(email, hash_password(password))
    if user is None:
        raise BadRequest(f"a user with the email {email} already exists")
    return user


def set_disabled(repo: Repository, email: str, disabled: bool) -> None:
    user = repo.get_user_by_email(email)
    if user is None:
        raise NotFound(f"no user with the email {email}")
    repo.set_user_disabled(user.id, disabled)


#: throttle rows untouched this long are deleted (by every PRUNE_EVERY-th login of a process)
PRUNE_AFTER = timedelta(days=2)
PRUNE_EVERY = 256
_attempts = itertools.count(1)


def account_key(email: str) -> str:
    """The throttle key of a login email: a digest of the normalised email (so unknown emails
    are counted exactly like known ones, and no typed email is stored)."""
    return hashlib.sha256(
        b"account\0" + email.strip().lower().encode("utf-8", "replace")
    ).hexdigest()


def client_key(address: str) -> str:
    """The throttle key of a client address: IPv6 clients by their /64 (one subscriber's
    network), IPv4 (also IPv4-mapped IPv6) by the address."""
    text = address.strip()
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        pass
    else:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            text = str(ip.ipv4_mapped)
        elif isinstance(ip, ipaddress.IPv6Address):
            text = str(ipaddress.IPv6Network((ip, 64), strict=False))
        else:
            text = str(ip)
    return hashlib.sha256(b"client\0" + text.encode("utf-8", "replace")).hexdigest()


def client_address(
    settings: Settings, remote_addr: str | None, header: Callable[[str], str | None]
) -> str | None:
    """Who is asking: the socket's peer, or, when ``LOGIN_CLIENT_IP_HEADER`` names a header
    that the proxy in front writes itself, that header (for ``X-Forwarded-For``, its first
    hop). A request without the header falls back to the peer."""
    name = settings.login_client_ip_header
    if name:
        value = (header(name) or "").split(",", 1)[0].strip()
        if value:
            return value[:100]
    return remote_addr or None


def login_policy(settings: Settings) -> LoginPolicy:
    return LoginPolicy(
        free_failures=settings.login_free_failures,
        base_delay=float(settings.login_delay_seconds),
        max_delay=float(settings.login_max_delay_seconds),
        client_burst=float(settings.login_client_burst),
        client_per_minute=float(settings.login_client_per_minute),
    )


@functools.lru_cache(maxsize=8)
def hash_slots(size: int) -> threading.BoundedSemaphore:
    """The process's argon2 slots (``LOGIN_MAX_CONCURRENT_HASHES``): each hash takes 64 MiB."""
    return threading.BoundedSemaphore(size)


def login(
    settings: Settings, repo: Repository, email: str, password: str, *, client: str | None = None
) -> Token:
    """A token for valid credentials. Every failure costs one argon2 verification and raises
    the same Unauthorized, so a caller cannot tell which part was wrong.

    Throttled first, before any hash (:meth:`Repository.reserve_login_attempt`): too many
    recent failures for this email, or too many attempts from ``client``, raise
    TooManyRequests (429 with Retry-After), even for the right password. At most
    ``LOGIN_MAX_CONCURRENT_HASHES`` verifications run at once; a login that waits longer than
    ``LOGIN_HASH_WAIT_SECONDS`` for a slot is Unavailable (503, Retry-After) and not counted."""
    account = account_key(email)
    if next(_attempts) % PRUNE_EVERY == 0:
        repo.prune_login_throttle(datetime.now(UTC) - PRUNE_AFTER)
    wait = repo.reserve_login_attempt(
        account, client_key(client) if client else None, login_policy(settings)
    )
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise TooManyRequests(f"too many login attempts; try again in {seconds} seconds", seconds)
    slots = hash_slots(settings.login_max_concurrent_hashes)
    try:
        user = repo.get_user_by_email(email.strip())
        if not slots.acquire(timeout=settings.login_hash_wait_seconds):
            raise Unavailable("too many logins at once; try again shortly")
    except BaseException:
        repo.finish_login_attempt(account, "abandoned")
        raise
    try:
        ok = verify_password(user.password_hash if user else None, password)
    finally:
        slots.release()
    if not ok or user is None or user.disabled:
        raise Unauthorized(LOGIN_FAILED)  # the attempt stays counted as a failure
    repo.finish_login_attempt(account, "succeeded")
    return issue_token(settings, user)
