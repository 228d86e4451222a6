"""POST /login and the token rules."""

from __future__ import annotations

import re
import threading
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


def test_wrong_email_and_wrong_password_are_indistinguishable(
    login_client: Any, alice: Person
) -> None:
    wrong_password = login_client.post("/login", headers=basic(alice.email, "nope-nope"))
    wrong_email = login_client.post("/login", headers=basic("eve@example.com", PASSWORD))
    assert wrong_password.status_code == wrong_email.status_code == 401
    assert_matches(wrong_password, "/login", "post")
    assert wrong_password.get_data() == wrong_email.get_data()
    assert wrong_password.headers["WWW-Authenticate"] == wrong_email.headers["WWW-Authenticate"]


def test_unknown_email_still_pays_for_one_password_hash(
    alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invoiceflow import passwords

    calls = _count_hashes(monkeypatch)
    ctx = get_context()
    for email in ("eve@example.com", alice.email):
        with pytest.raises(Unauthorized):
            accounts.login(ctx.settings, ctx.repo, email, "wrong password")
    assert len(calls) == 2 and calls[0] == passwords.DUMMY_HASH


def test_disabled_users_cannot_log_in_and_their_tokens_stop_working(
    login_client: Any, alice: Person
) -> None:
    ctx = get_context()
    accounts.set_disabled(ctx.repo, alice.email, True)
    r = login_client.post("/login", headers=basic(alice.email, PASSWORD))
    assert r.status_code == 401
    with pytest.raises(Unauthorized):
        bearer_user(ctx.settings, ctx.repo, f"Bearer {alice.token}")


@pytest.mark.parametrize("header", [None, "Bearer x", "Basic !!!", "Basic " + "YWxpY2U="])
def test_malformed_login_requests_are_401_not_500(
    login_client: Any, alice: Person, header: str | None
) -> None:
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
    claims = {
        "sub": alice.id,
        "iat": now,
        "exp": now + 60,
        "iss": s.jwt_issuer,
        "aud": s.jwt_audience,
    }
    attacks = {
        "alg none": jwt.encode(claims, "", algorithm="none"),
        "expired": jwt.encode(
            {**claims, "iat": now - 7200, "exp": now - 3600}, SECRET, algorithm="HS256"
        ),
        "wrong issuer": jwt.encode({**claims, "iss": "evil"}, SECRET, algorithm="HS256"),
        "wrong audience": jwt.encode({**claims, "aud": "other"}, SECRET, algorithm="HS256"),
        "wrong secret": jwt.encode(claims, "x" * 40, algorithm="HS256"),
        "HS512": jwt.encode(claims, SECRET, algorithm="HS512"),
        "tampered": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "payload swapped": good.split(".")[0]
        + "."
        + jwt.encode({**claims, "sub": "someone-else"}, "k" * 40, algorithm="HS256").split(".")[1]
        + "."
        + good.split(".")[2],
        "missing exp": jwt.encode(
            {k: v for k, v in claims.items() if k != "exp"}, SECRET, algorithm="HS256"
        ),
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
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    login_side = Settings.from_env(
        {"JWT_ALGORITHM": "RS256", "JWT_PRIVATE_KEY": private, "JWT_PUBLIC_KEY": public}
    )
    verify_side = Settings.from_env({"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY": public})
    token = issue_token(login_side, _user(alice)).token
    assert verify_token(verify_side, token) == alice.id
    with pytest.raises(ConfigError):
        issue_token(verify_side, _user(alice))  # no private key: cannot mint tokens
    # algorithm confusion: an HS256 token signed with the public key as the secret
    now = int(time.time())
    forged = jwt.api_jws.PyJWS().encode(
        jwt.utils.force_bytes(
            __import__("json").dumps(
                {
                    "sub": alice.id,
                    "iat": now,
                    "exp": now + 60,
                    "iss": "invoiceflow",
                    "aud": "invoiceflow-api",
                }
            )
        ),
        key=b"unused-placeholder-key-of-32-bytes!",
        algorithm="HS256",
    )
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
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    s = Settings.from_env(
        {"JWT_ALGORITHM": "EdDSA", "JWT_PRIVATE_KEY": private, "JWT_PUBLIC_KEY": public}
    )
    assert verify_token(s, issue_token(s, _user(alice)).token) == alice.id


def test_short_hs256_secrets_are_refused() -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.from_env({"JWT_SECRET": "short"})
    assert exc.value.problems[0].pointer == "/JWT_SECRET"


# -- throttling (issue 9, finding 4) ----------------------------------------------------------


def _throttled_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """Change login settings for this test: the context is rebuilt from the environment."""
    from invoiceflow.context import reset_context

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_context()


def _count_hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from invoiceflow import passwords

    calls: list[str] = []
    real = passwords._verify

    def counting_verify(password_hash: str, password: str) -> bool:
        calls.append(password_hash)
        return real(password_hash, password)

    monkeypatch.setattr(passwords, "_verify", counting_verify)
    return calls


def test_repeated_failures_get_429_with_retry_after_even_for_the_right_password(
    login_client: Any, alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    _throttled_env(monkeypatch, LOGIN_FREE_FAILURES="3", LOGIN_DELAY_SECONDS="60")
    hashes = _count_hashes(monkeypatch)
    for _ in range(3):
        assert login_client.post("/login", headers=basic(alice.email, "nope")).status_code == 401
    assert len(hashes) == 3
    wrong = login_client.post("/login", headers=basic(alice.email, "nope"))
    right = login_client.post("/login", headers=basic(alice.email.upper(), PASSWORD))
    for r in (wrong, right):  # the right password is refused too: no oracle
        assert r.status_code == 429
        assert_matches(r, "/login", "post")
        assert 55 <= int(r.headers["Retry-After"]) <= 60
        assert r.mimetype == "application/problem+json"
    assert len(hashes) == 3  # a throttled attempt costs no argon2 hash
    # another account is not affected
    assert login_client.post("/login", headers=basic("bob@example.com", "x")).status_code == 401


def test_unknown_emails_are_throttled_exactly_like_known_ones(
    login_client: Any, alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    _throttled_env(monkeypatch, LOGIN_FREE_FAILURES="2", LOGIN_DELAY_SECONDS="30")
    answers: dict[str, list[tuple[int, bytes, bool]]] = {}
    for email in (alice.email, "nobody@example.com"):
        answers[email] = []
        for _ in range(4):
            r = login_client.post("/login", headers=basic(email, "wrong"))
            retry = r.headers.get("Retry-After")
            assert retry is None or 20 <= int(retry) <= 30
            # the seconds left depend on how long the previous request took: not compared
            body = re.sub(rb"\d+ seconds", b"N seconds", r.get_data())
            answers[email].append((r.status_code, body, retry is None))
    assert [a[0] for a in answers[alice.email]] == [401, 401, 429, 429]
    assert answers[alice.email] == answers["nobody@example.com"]


def test_the_lockout_is_short_and_the_real_user_gets_in_afterwards(
    alice: Person, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attacker's failures lock the account for at most LOGIN_MAX_DELAY_SECONDS after the
    last one; then the owner's right password works and resets the count (injected clock)."""
    from datetime import UTC, datetime, timedelta

    from invoiceflow.errors import TooManyRequests
    from invoiceflow.stores import open_repository

    _throttled_env(
        monkeypatch,
        LOGIN_FREE_FAILURES="2",
        LOGIN_DELAY_SECONDS="60",
        LOGIN_MAX_DELAY_SECONDS="900",
    )
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    settings = get_context().settings
    with open_repository(database_url, clock=lambda: now[0]) as repo:
        waits = []
        for _ in range(8):  # the attacker retries as soon as allowed
            try:
                accounts.login(settings, repo, alice.email, "guess", client="203.0.113.9")
            except Unauthorized:
                continue
            except TooManyRequests as exc:
                assert exc.retry_after is not None
                waits.append(exc.retry_after)
                now[0] += timedelta(seconds=exc.retry_after)
                with pytest.raises(Unauthorized):
                    accounts.login(settings, repo, alice.email, "guess", client="203.0.113.9")
        assert waits == [60, 120, 240, 480, 900, 900]
        with pytest.raises(TooManyRequests) as locked:
            accounts.login(settings, repo, alice.email, PASSWORD, client="198.51.100.7")
        assert locked.value.retry_after == 900
        now[0] += timedelta(seconds=900)
        token = accounts.login(settings, repo, alice.email, PASSWORD, client="198.51.100.7")
        assert verify_token(settings, token.token) == alice.id
        for _ in range(2):  # the count was reset: both free failures are free again
            with pytest.raises(Unauthorized):
                accounts.login(settings, repo, alice.email, "guess", client="198.51.100.7")


def test_each_client_address_has_a_token_bucket(
    login_client: Any, alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    _throttled_env(monkeypatch, LOGIN_CLIENT_BURST="2", LOGIN_CLIENT_PER_MINUTE="1")
    attacker = {"REMOTE_ADDR": "203.0.113.9"}
    for i in range(2):  # password spraying: one try per account
        r = login_client.post(
            "/login", headers=basic(f"user{i}@example.com", "Summer2024"), environ_base=attacker
        )
        assert r.status_code == 401
    r = login_client.post("/login", headers=basic(alice.email, PASSWORD), environ_base=attacker)
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    assert_matches(r, "/login", "post")
    # a forged X-Forwarded-For does not buy a new bucket (LOGIN_CLIENT_IP_HEADER is unset)
    r = login_client.post(
        "/login",
        headers={**basic(alice.email, PASSWORD), "X-Forwarded-For": "192.0.2.1"},
        environ_base=attacker,
    )
    assert r.status_code == 429
    # IPv6 clients share a bucket per /64
    for i in range(2):
        login_client.post(
            "/login",
            headers=basic(f"v6{i}@example.com", "x"),
            environ_base={"REMOTE_ADDR": f"2001:db8:1:2::{i + 1}"},
        )
    r = login_client.post(
        "/login",
        headers=basic(alice.email, PASSWORD),
        environ_base={"REMOTE_ADDR": "2001:db8:1:2:ffff::1"},
    )
    assert r.status_code == 429
    r = login_client.post(
        "/login", headers=basic(alice.email, PASSWORD), environ_base={"REMOTE_ADDR": "198.51.100.7"}
    )
    assert r.status_code == 200  # the real user, elsewhere, is not affected


@pytest.mark.parametrize("header", ["X-Forwarded-For", "X-Real-IP"])
def test_behind_a_trusted_proxy_its_header_names_the_client(
    login_client: Any, alice: Person, monkeypatch: pytest.MonkeyPatch, header: str
) -> None:
    """In Knative every request comes from queue-proxy (127.0.0.1): the client is what the
    proxy in front wrote (for X-Forwarded-For, the first hop)."""
    _throttled_env(
        monkeypatch,
        LOGIN_CLIENT_BURST="2",
        LOGIN_CLIENT_PER_MINUTE="1",
        LOGIN_CLIENT_IP_HEADER=header,
    )
    proxy = {"REMOTE_ADDR": "127.0.0.1"}

    def attempt(hops: str, secret: str) -> int:
        return int(
            login_client.post(
                "/login", headers={**basic(alice.email, secret), header: hops}, environ_base=proxy
            ).status_code
        )

    assert [attempt("203.0.113.9, 127.0.0.1", "wrong") for _ in range(3)] == [401, 401, 429]
    assert attempt("198.51.100.7, 127.0.0.1", PASSWORD) == 200


def test_concurrent_logins_never_run_more_hashes_than_the_slots(
    alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 logins at once (the issue's 1.4 GiB): at most LOGIN_MAX_CONCURRENT_HASHES argon2
    verifications run at the same time, counted inside the hash function."""
    from concurrent.futures import ThreadPoolExecutor

    from invoiceflow import passwords

    _throttled_env(monkeypatch, LOGIN_MAX_CONCURRENT_HASHES="2", LOGIN_HASH_WAIT_SECONDS="120")
    lock = threading.Lock()
    running = [0]
    peak = [0]
    real = passwords._verify

    def counted(password_hash: str, password: str) -> bool:
        """Stands in for argon2 (64 MiB, and seconds on a busy machine): records how many
        run at once and stays inside long enough for the others to pile up."""
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            time.sleep(0.05)
            return password_hash != passwords.DUMMY_HASH and real(password_hash, password)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(passwords, "_verify", counted)
    ctx = get_context()
    barrier = threading.Barrier(20)

    def attempt(i: int) -> str:
        barrier.wait(timeout=10)
        email = alice.email if i == 0 else f"user{i}@example.com"
        try:
            accounts.login(
                ctx.settings, ctx.repo, email, PASSWORD if i == 0 else "x", client=f"192.0.2.{i}"
            )
            return "ok"
        except Unauthorized:
            return "401"

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(attempt, range(20), timeout=300))
    assert results.count("ok") == 1 and results.count("401") == 19
    assert peak[0] == 2  # never more than the slots (and the slots are used)


def test_a_login_that_finds_every_hash_slot_busy_is_a_503_and_not_counted(
    login_client: Any, alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invoiceflow import passwords

    _throttled_env(monkeypatch, LOGIN_MAX_CONCURRENT_HASHES="1", LOGIN_HASH_WAIT_SECONDS="0")
    inside, release = threading.Event(), threading.Event()
    real = passwords._verify

    def slow(password_hash: str, password: str) -> bool:
        inside.set()
        release.wait(timeout=30)
        return real(password_hash, password)

    monkeypatch.setattr(passwords, "_verify", slow)
    ctx = get_context()

    def hold_the_slot() -> None:
        with pytest.raises(Unauthorized):
            accounts.login(ctx.settings, ctx.repo, "other@example.com", "x")

    holder = threading.Thread(target=hold_the_slot)
    holder.start()
    try:
        assert inside.wait(timeout=30)
        r = login_client.post("/login", headers=basic(alice.email, PASSWORD))
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        assert_matches(r, "/login", "post")
    finally:
        release.set()
        holder.join(timeout=30)
    # the 503 was not counted: all but one free failure, and the account is still open
    for _ in range(ctx.settings.login_free_failures - 1):
        assert login_client.post("/login", headers=basic(alice.email, "guess")).status_code == 401
    assert login_client.post("/login", headers=basic(alice.email, PASSWORD)).status_code == 200


def test_login_settings_are_validated() -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.from_env(
            {
                "JWT_SECRET": SECRET,
                "LOGIN_FREE_FAILURES": "0",
                "LOGIN_DELAY_SECONDS": "10",
                "LOGIN_MAX_DELAY_SECONDS": "5",
                "LOGIN_CLIENT_IP_HEADER": "X-Forwarded-For: 1.2.3.4",
                "LOGIN_MAX_CONCURRENT_HASHES": "many",
            }
        )
    assert sorted(p.pointer for p in exc.value.problems) == [
        "/LOGIN_CLIENT_IP_HEADER",
        "/LOGIN_FREE_FAILURES",
        "/LOGIN_MAX_CONCURRENT_HASHES",
        "/LOGIN_MAX_DELAY_SECONDS",
    ]
    defaults = _settings()
    assert (
        defaults.login_free_failures,
        defaults.login_delay_seconds,
        defaults.login_max_delay_seconds,
        defaults.login_max_concurrent_hashes,
    ) == (5, 1, 900, 4)
