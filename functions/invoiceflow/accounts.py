"""User accounts: creation, disabling and login (the CLI and the login function use these)."""

from __future__ import annotations

import re

from invoiceflow.auth import Token, issue_token
from invoiceflow.errors import BadRequest, NotFound, Unauthorized
from invoiceflow.passwords import hash_password, verify_password
from invoiceflow.settings import Settings
from invoiceflow.stores.protocols import Repository, User

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


def login(settings: Settings, repo: Repository, email: str, password: str) -> Token:
    """A token for valid credentials. Every failure costs one argon2 verification and raises
    the same Unauthorized, so a caller cannot tell which part was wrong."""
    user = repo.get_user_by_email(email.strip())
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or user.disabled:
        raise Unauthorized(LOGIN_FAILED)
    return issue_token(settings, user)
