"""HS256 tokens are verified with the standard library (invoiceflow.auth._hs256_claims), not by
pyjwt: for every token of a corpus of good tokens, forgeries and malformations, the verdict
(the user id, "expired" or "not valid") is pyjwt's own (auth._pyjwt_claims, which the RS256
and EdDSA paths use). Beyond the corpus the stdlib verifier is stricter on the form: only
base64url segments (RFC 7515 §7.1), and no ``crit`` header (no extension is implemented)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from invoiceflow import auth
from invoiceflow.errors import Unauthorized
from invoiceflow.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s" * 40
SETTINGS = Settings.from_env({"JWT_SECRET": SECRET})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw(header: Any, claims: Any, key: str = SECRET, *, sign: str | None = None) -> str:
    """A token signed by hand: any header, any payload (not only what pyjwt would write)."""
    h = _b64(json.dumps(header).encode()) if not isinstance(header, str) else header
    p = _b64(json.dumps(claims).encode()) if not isinstance(claims, str) else claims
    mac = hmac.new(key.encode(), f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{_b64(mac) if sign is None else sign}"


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "user-1",
        "iat": now,
        "exp": now + 600,
        "iss": SETTINGS.jwt_issuer,
        "aud": SETTINGS.jwt_audience,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not ...}


HS = {"alg": "HS256", "typ": "JWT"}


def _corpus() -> dict[str, str]:
    now = int(time.time())
    good = jwt.encode(_claims(), SECRET, algorithm="HS256")
    h, p, s = good.split(".")
    return {
        "good (pyjwt)": good,
        "good (by hand)": _raw(HS, _claims()),
        "no typ": _raw({"alg": "HS256"}, _claims()),
        "aud list": _raw(HS, _claims(aud=["other", SETTINGS.jwt_audience])),
        "aud list without us": _raw(HS, _claims(aud=["other"])),
        "aud empty list": _raw(HS, _claims(aud=[])),
        "aud empty": _raw(HS, _claims(aud="")),
        "aud number": _raw(HS, _claims(aud=5)),
        "aud list of numbers": _raw(HS, _claims(aud=[5, SETTINGS.jwt_audience])),
        "wrong aud": _raw(HS, _claims(aud="other")),
        "wrong iss": _raw(HS, _claims(iss="evil")),
        "iss number": _raw(HS, _claims(iss=7)),
        "iss list": _raw(HS, _claims(iss=[SETTINGS.jwt_issuer])),
        "expired": _raw(HS, _claims(iat=now - 7200, exp=now - 3600)),
        "expired within leeway": _raw(HS, _claims(exp=now - auth.LEEWAY_SECONDS + 3)),
        "expired and wrong iss": _raw(HS, _claims(exp=now - 3600, iss="evil")),
        "exp string number": _raw(HS, _claims(exp=str(now + 600))),
        "exp float": _raw(HS, _claims(exp=now + 600.5)),
        "exp text": _raw(HS, _claims(exp="soon")),
        "exp huge": _raw(HS, _claims(exp=10**400)),
        "exp null": _raw(HS, _claims(exp=None)),
        "exp missing": _raw(HS, _claims(exp=...)),
        "iat missing": _raw(HS, _claims(iat=...)),
        "iat in the future": _raw(HS, _claims(iat=now + 3600)),
        "iat text": _raw(HS, _claims(iat="now")),
        "nbf in the future": _raw(HS, _claims(nbf=now + 3600)),
        "nbf past": _raw(HS, _claims(nbf=now - 10)),
        "nbf text": _raw(HS, _claims(nbf="x")),
        "sub missing": _raw(HS, _claims(sub=...)),
        "sub empty": _raw(HS, _claims(sub="")),
        "sub number": _raw(HS, _claims(sub=42)),
        "jti number": _raw(HS, _claims(jti=42)),
        "jti string": _raw(HS, _claims(jti="j-1")),
        "kid number": _raw({**HS, "kid": 1}, _claims()),
        "kid string": _raw({**HS, "kid": "k1"}, _claims()),
        "alg none": jwt.encode(_claims(), "", algorithm="none"),
        "alg none by hand": _raw({"alg": "none"}, _claims(), sign=""),
        "alg missing": _raw({"typ": "JWT"}, _claims()),
        "alg HS512": jwt.encode(_claims(), SECRET * 2, algorithm="HS512"),
        "alg lower case": _raw({"alg": "hs256"}, _claims()),
        "b64 false": _raw({**HS, "b64": False}, _claims()),
        "wrong secret": jwt.encode(_claims(), "x" * 40, algorithm="HS256"),
        "signature cut": f"{h}.{p}.{s[:-2]}",
        "signature empty": f"{h}.{p}.",
        "signature of another payload": f"{h}.{_raw(HS, _claims(sub='admin')).split('.')[1]}.{s}",
        "header not an object": _raw(["alg", "HS256"], _claims()),
        "payload not an object": _raw(HS, ["sub", "user-1"]),
        "payload not json": _raw(HS, _b64(b"{nope")),
        "header not json": _raw(_b64(b"{nope"), _claims()),
        "deep header": _raw(_b64(b"[" * 100000 + b"]" * 100000), _claims()),
        "two segments": f"{h}.{p}",
        "one segment": h,
        "empty": "",
        "garbage": "not.a.token",
        "whitespace": f" {good}",
        "unicode": "é.é.é",
    }


def _verdict(verify: Any, token: str) -> str:
    try:
        claims = verify(SETTINGS, SECRET, token)
    except Unauthorized as exc:
        return "expired" if "expired" in exc.detail else "invalid"
    sub = claims.get("sub")
    return f"user {sub}" if isinstance(sub, str) and sub else "invalid"


@pytest.mark.parametrize("name", list(_corpus()))
def test_the_stdlib_verifier_gives_pyjwts_verdict(name: str) -> None:
    token = _corpus()[name]
    assert _verdict(auth._hs256_claims, token) == _verdict(auth._pyjwt_claims, token)


def test_the_corpus_holds_accepted_expired_and_refused_tokens() -> None:
    """The corpus is not all refusals (a verifier that refused everything would pass)."""
    verdicts = {_verdict(auth._hs256_claims, t) for t in _corpus().values()}
    assert verdicts == {"user user-1", "expired", "invalid"}


def test_padded_or_non_base64url_segments_are_refused() -> None:
    good = _raw(HS, _claims())
    h, p, s = good.split(".")
    for token in (f"{h}=.{p}.{s}", f"{h}.{p}.{s}==", f"{h}.{p}+.{s}", f"{h}.{p}.{s}!", good + "."):
        with pytest.raises(Unauthorized):
            auth.verify_token(SETTINGS, token)
    assert auth.verify_token(SETTINGS, good) == "user-1"


def test_a_crit_header_is_refused() -> None:
    with pytest.raises(Unauthorized):
        auth.verify_token(SETTINGS, _raw({**HS, "crit": ["exp"]}, _claims()))


def test_verifying_an_hs256_token_imports_neither_pyjwt_nor_cryptography() -> None:
    """What the stdlib verifier is for: upload's and download's cold start (issue 12)."""
    token = jwt.encode(_claims(), SECRET, algorithm="HS256")
    script = (
        "import sys\n"
        "from invoiceflow import auth\n"
        "from invoiceflow.settings import Settings\n"
        f"s = Settings.from_env({{'JWT_SECRET': {SECRET!r}}})\n"
        f"assert auth.verify_token(s, {token!r}) == 'user-1'\n"
        "print(sorted(m for m in ('jwt', 'cryptography') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "functions"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
