"""Tokens: JWTs with pyjwt, the algorithm pinned on both sides.

* HS256 with ``JWT_SECRET`` (at least 32 bytes), or RS256 / EdDSA with a key pair: only the
  login function is given ``JWT_PRIVATE_KEY``; every other function verifies with
  ``JWT_PUBLIC_KEY``.
* Claims: ``sub`` (user id), ``iat``, ``exp`` (default one hour), ``iss``, ``aud``; all of
  them are required on verify.
* Verification accepts exactly the configured algorithm, so ``alg: none`` and algorithm
  confusion (an RS256 public key used as an HS256 secret) are rejected; so are expired tokens,
  a wrong issuer or audience, any tampering, and tokens of users that are disabled or gone.
* HS256 tokens are verified here with the standard library (:func:`_hs256_claims`), not by
  pyjwt: importing pyjwt imports ``cryptography`` whenever it is installed (it is, for
  RS256/EdDSA), ~30 ms of every verifying function's cold start (upload, download) for an
  HMAC. It takes the claims pyjwt would (tests/api/test_token_verification.py holds the two to
  the same verdict for every token of a corpus of forgeries and malformations) and is stricter
  on the form: exactly three base64url segments, no ``crit`` header. pyjwt signs every token
  (login) and verifies RS256 and EdDSA.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from typing import Any

from invoiceflow.errors import ConfigError, Problem, Unauthorized
from invoiceflow.records import record
from invoiceflow.settings import Settings
from invoiceflow.stores.protocols import Repository, User

#: clock skew tolerated between the functions' clocks
LEEWAY_SECONDS = 10
_REQUIRED = ["sub", "iat", "exp", "iss", "aud"]


@record
class Token:
    token: str
    expires_in: int

    def to_dict(self) -> dict[str, object]:
        return {"token": self.token, "token_type": "Bearer", "expires_in": self.expires_in}


def _key(settings: Settings, *, signing: bool) -> str:
    """HS256: the shared secret. RS256/EdDSA: the private key to sign, the public one to verify."""
    if settings.jwt_algorithm == "HS256":
        key, name = settings.jwt_secret, "JWT_SECRET"
    elif signing:
        key, name = settings.jwt_private_key, "JWT_PRIVATE_KEY"
    else:
        key, name = settings.jwt_public_key, "JWT_PUBLIC_KEY"
    if not key:
        action = "sign" if signing else "verify"
        raise ConfigError(
            [Problem(f"/{name}", f"is required to {action} {settings.jwt_algorithm} tokens")]
        )
    return key


def issue_token(settings: Settings, user: User, *, now: float | None = None) -> Token:
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": user.id,
        "iat": issued,
        "exp": issued + settings.jwt_ttl_seconds,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }
    import jwt

    token = jwt.encode(claims, _key(settings, signing=True), algorithm=settings.jwt_algorithm)
    return Token(token=token, expires_in=settings.jwt_ttl_seconds)


def verify_token(settings: Settings, token: str) -> str:
    """The user id (``sub``) of a valid token; Unauthorized otherwise."""
    key = _key(settings, signing=False)
    if settings.jwt_algorithm == "HS256":
        claims = _hs256_claims(settings, key, token)
    else:
        claims = _pyjwt_claims(settings, key, token)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise Unauthorized("the token is not valid")
    return sub


def _pyjwt_claims(settings: Settings, key: str, token: str) -> dict[str, Any]:
    import jwt

    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": _REQUIRED, "verify_signature": True},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired") from None
    except (jwt.InvalidTokenError, ValueError, TypeError):
        raise Unauthorized("the token is not valid") from None
    return claims


#: one segment of a JWS compact serialisation: base64url without padding
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")


def _segment_json(segment: str) -> Any:
    return json.loads(_segment_bytes(segment))


def _segment_bytes(segment: str) -> bytes:
    if _SEGMENT.fullmatch(segment) is None or len(segment) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _numeric_date(claims: dict[str, Any], name: str) -> int:
    """A NumericDate claim as pyjwt reads it (``int()`` of the value)."""
    return int(claims[name])


def _hs256_claims(settings: Settings, secret: str, token: str) -> dict[str, Any]:
    """The claims of an HS256 token, verified as pyjwt's ``decode`` does with the options of
    :func:`_pyjwt_claims`: the header's ``alg`` is HS256, the HMAC-SHA256 of the first two
    segments (compared in constant time) is the third, the payload is a JSON object holding
    every claim of ``_REQUIRED`` (not null), ``iat`` and ``nbf`` not after now + leeway, ``exp``
    after now - leeway, ``iss`` the issuer, ``aud`` (a string or a list of strings) the
    audience, ``jti`` and the header's ``kid`` strings when present."""
    invalid = Unauthorized("the token is not valid")
    try:
        header_segment, payload_segment, signature_segment = token.split(".")
        header = _segment_json(header_segment)
        if (
            not isinstance(header, dict)
            or header.get("alg") != "HS256"
            or "crit" in header  # no extension is understood here (pyjwt knows "b64" only)
            or header.get("b64", True) is False
            or not isinstance(header.get("kid", ""), str)
        ):
            raise invalid
        signature = _segment_bytes(signature_segment)
        expected = hmac.new(
            secret.encode(), f"{header_segment}.{payload_segment}".encode(), hashlib.sha256
        ).digest()
        if not hmac.compare_digest(signature, expected):
            raise invalid
        claims = _segment_json(payload_segment)
        if not isinstance(claims, dict) or any(claims.get(c) is None for c in _REQUIRED):
            raise invalid
        now = time.time()
        if _numeric_date(claims, "iat") > now + LEEWAY_SECONDS:
            raise invalid
        if "nbf" in claims and _numeric_date(claims, "nbf") > now + LEEWAY_SECONDS:
            raise invalid
        if _numeric_date(claims, "exp") <= now - LEEWAY_SECONDS:
            raise Unauthorized("the token has expired")
        audiences = claims["aud"]
        if isinstance(audiences, str):
            audiences = [audiences]
        if (
            claims["iss"] != settings.jwt_issuer
            or not isinstance(claims["iss"], str)
            or not isinstance(audiences, list)
            or not all(isinstance(a, str) for a in audiences)
            or settings.jwt_audience not in audiences
            or not isinstance(claims.get("jti", ""), str)
        ):
            raise invalid
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error):
        raise invalid from None
    return claims


def bearer_user(settings: Settings, repo: Repository, authorization: str | None) -> User:
    """The active user behind an ``Authorization: Bearer ...`` header."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send 'Authorization: Bearer TOKEN' (get a token from POST /login)")
    user = repo.get_user(verify_token(settings, token.strip()))
    if user is None or user.disabled:
        raise Unauthorized("the token is not valid")
    return user


def basic_credentials(authorization: str | None) -> tuple[str, str]:
    """(email, password) from an ``Authorization: Basic ...`` header."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise Unauthorized("log in with HTTP Basic auth: curl -X POST .../login -u email:password")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):  # ValueError: non-ASCII text
        raise Unauthorized("malformed Basic credentials") from None
    email, sep, password = decoded.partition(":")
    if not sep or any(c < " " or c == "\x7f" for c in email):  # NUL: PostgreSQL text cannot
        raise Unauthorized("malformed Basic credentials")
    return email, password
