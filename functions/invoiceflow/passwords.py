"""Password hashing: argon2id (argon2-cffi), RFC 9106 "low memory" parameters.

Login looks the user up and then *always* verifies one hash: the user's, or
:data:`DUMMY_HASH` when the email is unknown, so both cases cost the same time::

    user = repo.get_user_by_email(email)
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or user.disabled:
        raise Unauthorized(...)
"""

from __future__ import annotations

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)

#: argon2id hash (same parameters as every real hash) of a random password nobody knows.
#: ``tests/stores/test_passwords.py`` checks it still matches the parameters above.
DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$709JseiX4I+5oqn03g2B7Q$"
    "fZ/YPRRjXeM4o9G3sODcAyLFzFs281TblJdaPlvIX/s"
)


def hash_password(password: str) -> str:
    """A new argon2id hash (random salt) of ``password``."""
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``. With ``None`` (unknown user) the dummy
    hash is verified anyway, at the same cost, and the answer is False."""
    if password_hash is None:
        _verify(DUMMY_HASH, password)
        return False
    return _verify(password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (rehash after login)."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
