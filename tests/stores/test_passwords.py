"""invoiceflow.passwords: argon2id hashing and the constant-cost unknown-user check."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.low_level import Type

from invoiceflow.passwords import DUMMY_HASH, hash_password, needs_rehash, verify_password


def test_hash_and_verify() -> None:
    hashed = hash_password("correct horse battery staple")
    assert hashed.startswith("$argon2id$")
    assert hashed != hash_password("correct horse battery staple")  # salted
    assert verify_password(hashed, "correct horse battery staple") is True
    assert verify_password(hashed, "Correct horse battery staple") is False
    assert verify_password(hashed, "") is False
    assert needs_rehash(hashed) is False


def test_unknown_user_verifies_the_dummy_hash_and_fails() -> None:
    assert verify_password(None, "anything") is False
    assert verify_password(None, "") is False


def test_dummy_hash_uses_todays_parameters() -> None:
    """If the hashing parameters change, regenerate DUMMY_HASH so an unknown email keeps
    costing exactly what a known one does."""
    assert DUMMY_HASH.startswith("$argon2id$")
    assert needs_rehash(DUMMY_HASH) is False


def test_garbage_hashes_never_verify() -> None:
    for garbage in ("", "plaintext", "$argon2id$v=19$m=1,t=1,p=1$bad$bad", "$2b$12$bcrypt"):
        assert verify_password(garbage, "plaintext") is False
        assert needs_rehash(garbage) is True


def test_weaker_hashes_need_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.ID)
    old = weak.hash("pw")
    assert verify_password(old, "pw") is True  # still accepted...
    assert needs_rehash(old) is True  # ...and upgraded after login
