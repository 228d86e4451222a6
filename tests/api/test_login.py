"""POST /login and the token rules."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from invoiceflow import accounts
from invoiceflow.auth import bearer_user, issue_token, verify_token
from invoiceflow.context import get_context
from invoiceflow.errors import ConfigError, Unauthorized
from invoiceflow.settings import Settings
from support.api import PASSWORD, SECRET, Person, basic
from support.openapi import assert_matches


def test_login_returns_a_bearer_token(login_client: Any, alice: Person) -> None:
    r = login_client.post("/login", headers=basic(alice.email, PASSWORD))
    assert r.status_code == 200
    assert_matches(r, "/login", "post")
    body = r.get_json()
    assert set(body) == {"token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert r.headers["Cache-Control"] == "no-store"
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"], audience="invoiceflow-api")
    assert claims["sub"] == alice.id and claims["iss"] == "invoiceflow"
    assert claims["exp"] - claims["iat"] == 3600


def test_wrong_email_and_wrong_password_are_indistinguishable(login_client: Any,
                                                              alice: Person) -> None:
    wrong_password = login_client.post("/login", headers=basic(alice.email, "nope-nope"))
    wrong_email = login_client.post("/login", headers=basic("eve@example.com", PASSWORD))
    assert wrong_password.status_code == wrong_email.status_code == 401
    assert_matches(wrong_password, "/login", "post")
    assert wrong_password.get_data() == wrong_email.get_data()
    assert wrong_password.headers["WWW-Authenticate"] == wrong_email.headers["WWW-Authenticate"]


def test_unknown_email_still_pays_for_one_password_hash(alice: Person,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from invoiceflow import passwords

    calls: list[str] = []
    real = passwords._verify
    monkeypatch.setattr(passwords, "_verify", lambda h, p: calls.append(h) or real(h, p))
    ctx = get_context()
    for email in ("eve@example.com", alice.email):
        with pytest.raises(Unauthorized):
            accounts.login(ctx.settings, ctx.repo, email, "wrong password")
    assert len(calls) == 2 and calls[0] == passwords.DUMMY_HASH


def test_disabled_users_cannot_log_in_and_their_tokens_stop_working(
        login_client: Any, alice: Person) -> None:
    ctx = get_context()
    accounts.set_disabled(ctx.repo, alice.email, True)
    r = login_client.post("/login", headers=basic(alice.email, PASSWORD))
    assert r.status_code == 401
    with pytest.raises(Unauthorized):
        bearer_user(ctx.settings, ctx.repo, f"Bearer {alice.token}")


@pytest.mark.parametrize("header", [None, "Bearer x", "Basic !!!", "Basic " + "YWxpY2U="])
def test_malformed_login_requests_are_401_not_500(login_client: Any, alice: Person,
                                                   header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    r = login_client.post("/login", headers=headers)
    assert r.status_code == 401
    assert r.mimetype == "application/problem+json"


def test_login_only_accepts_post(login_client: Any, alice: Person) -> None:
    r = login_client.get("/login")
    assert r.status_code == 405
    assert_matches(r, "/login", "post")


def _settings(**env: str) -> Settings:
    return Settings.from_env({"JWT_SECRET": SECRET, **env})


def _user(alice: Person) -> Any:
    return get_context().repo.get_user(alice.id)


def test_token_attacks_are_rejected(alice: Person) -> None:
    s = _settings()
    good = issue_token(s, _user(alice)).token
    assert verify_token(s, good) == alice.id
    now = int(time.time())
    claims = {"sub": alice.id, "iat": now, "exp": now + 60, "iss": s.jwt_issuer,
              "aud": s.jwt_audience}
    attacks = {
        "alg none": jwt.encode(claims, None, algorithm="none"),
        "expired": jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, SECRET,
                              algorithm="HS256"),
        "wrong issuer": jwt.encode({**claims, "iss": "evil"}, SECRET, algorithm="HS256"),
        "wrong audience": jwt.encode({**claims, "aud": "other"}, SECRET, algorithm="HS256"),
        "wrong secret": jwt.encode(claims, "x" * 40, algorithm="HS256"),
        "HS512": jwt.encode(claims, SECRET, algorithm="HS512"),
        "tampered": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "payload swapped": good.split(".")[0] + "." + jwt.encode(
            {**claims, "sub": "someone-else"}, "k" * 40, algorithm="HS256").split(".")[1]
            + "." + good.split(".")[2],
        "missing exp": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, SECRET,
                                  algorithm="HS256"),
        "garbage": "not.a.token",
    }
    for name, token in attacks.items():
        with pytest.raises(Unauthorized):
            verify_token(s, token)
        assert name


def test_rs256_only_login_holds_the_private_key_and_confusion_fails(alice: Person) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    login_side = Settings.from_env({"JWT_ALGORITHM": "RS256", "JWT_PRIVATE_KEY": private,
                                    "JWT_PUBLIC_KEY": public})
    verify_side = Settings.from_env({"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY": public})
    token = issue_token(login_side, _user(alice)).token
    assert verify_token(verify_side, token) == alice.id
    with pytest.raises(ConfigError):
        issue_token(verify_side, _user(alice))  # no private key: cannot mint tokens
    # algorithm confusion: an HS256 token signed with the public key as the secret
    now = int(time.time())
    forged = jwt.api_jws.PyJWS().encode(
        jwt.utils.force_bytes(__import__("json").dumps(
            {"sub": alice.id, "iat": now, "exp": now + 60, "iss": "invoiceflow",
             "aud": "invoiceflow-api"})),
        key=b"unused-placeholder-key-of-32-bytes!", algorithm="HS256")
    with pytest.raises(Unauthorized):
        verify_token(verify_side, forged)
    import hashlib
    import hmac

    header, payload, _ = forged.split(".")
    signature = hmac.new(public.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    confused = f"{header}.{payload}." + jwt.utils.base64url_encode(signature.digest()).decode()
    with pytest.raises(Unauthorized):
        verify_token(verify_side, confused)


def test_eddsa_tokens(alice: Person) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    s = Settings.from_env({"JWT_ALGORITHM": "EdDSA", "JWT_PRIVATE_KEY": private,
                           "JWT_PUBLIC_KEY": public})
    assert verify_token(s, issue_token(s, _user(alice)).token) == alice.id


def test_short_hs256_secrets_are_refused() -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.from_env({"JWT_SECRET": "short"})
    assert exc.value.problems[0].pointer == "/JWT_SECRET"
