"""Tokens: JWTs with pyjwt, the algorithm pinned on both sides.

* HS256 with ``JWT_SECRET`` (at least 32 bytes), or RS256 / EdDSA with a key pair: only the
  login function is given ``JWT_PRIVATE_KEY``; every other function verifies with
  ``JWT_PUBLIC_KEY``.
* Claims: ``sub`` (user id), ``iat``, ``exp`` (default one hour), ``iss``, ``aud``; all of
  them are required on verify.
* Verification accepts exactly the configured algorithm, so ``alg: none`` and algorithm
  confusion (an RS256 public key used as an HS256 secret) are rejected; so are expired tokens,
  a wrong issuer or audience, any tampering, and tokens of users that are disabled or gone.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass

import jwt

from invoiceflow.errors import ConfigError, Problem, Unauthorized
from invoiceflow.settings import Settings
from invoiceflow.stores.protocols import Repository, User

#: clock skew tolerated between the functions' clocks
LEEWAY_SECONDS = 10
_REQUIRED = ["sub", "iat", "exp", "iss", "aud"]


@dataclass(frozen=True)
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
    token = jwt.encode(claims, _key(settings, signing=True), algorithm=settings.jwt_algorithm)
    return Token(token=token, expires_in=settings.jwt_ttl_seconds)


def verify_token(settings: Settings, token: str) -> str:
    """The user id (``sub``) of a valid token; Unauthorized otherwise."""
    try:
        claims = jwt.decode(
            token,
            _key(settings, signing=False),
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
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise Unauthorized("the token is not valid")
    return sub


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
