"""Every setting is an environment variable, and every one is read here and nowhere else.

``Settings.from_env()`` reads the whole table below at once and raises
:class:`~invoiceflow.errors.ConfigError` listing *every* missing or invalid variable, so an
operator fixes a Service's environment in one go.

``ENV_VARS`` is the machine-readable table and the only place a default is written
(``from_env`` takes each default from it; the default of ``DATA_DIR``, :func:`default_data_dir`,
and the defaults under it are derived in ``from_env`` and named in their help). The deployment
tests use it to check that each Knative Service is given every variable its function reads,
and that secrets come only from Secrets.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from urllib.parse import urlparse

from invoiceflow.domain.limits import DEFAULT_MAX_BYTES
from invoiceflow.errors import ConfigError, Problem
from invoiceflow.outputs import DEFAULT_FORMATS, OUTPUT_FORMATS, check_formats, split_formats
from invoiceflow.records import record

#: The functions (Knative Services) of the product.
FUNCTIONS = (
    "login",
    "upload",
    "download",
    "intake",
    "render-pdf",
    "render-xlsx",
    "render-xml",
    "notify",
    "dead-letter",
)

_ALL = frozenset(FUNCTIONS)
#: every function uses the database
_STORES = _ALL
#: the functions that use the document store (their readiness checks it)
DOCUMENT_STORE_USERS = frozenset(
    {"upload", "download", "intake", "render-pdf", "render-xlsx", "render-xml", "notify"}
)
_EMITTERS = frozenset(
    {"upload", "intake", "render-pdf", "render-xlsx", "render-xml", "notify", "dead-letter"}
)
_VERIFY = frozenset({"upload", "download"})
#: login issues the tokens, the others verify them
_TOKENS = frozenset({"login"}) | _VERIFY


@record
class EnvVar:
    name: str
    help: str
    default: str | None = None
    #: functions that read it (all of them must be given it in a cluster unless it has a default)
    used_by: frozenset[str] = _ALL
    #: comes from a Kubernetes Secret, never a ConfigMap; never logged
    secret: bool = False


_FORMATS = tuple(OUTPUT_FORMATS)
_ALGORITHMS = ("HS256", "RS256", "EdDSA")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

#: the shortest outbox claim: longer than a send's timeout (events.DEFAULT_TIMEOUT, 10 s), or
#: a second relay could take a row the first one is still sending
OUTBOX_CLAIM_MINIMUM = 11

ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar(
        "DATABASE_URL",
        "postgresql://user:pass@host/db or sqlite:///path.db "
        "(default: sqlite:///DATA_DIR/invoiceflow.db)",
        None,
        _STORES,
        secret=True,
    ),
    EnvVar(
        "MONGODB_URL",
        "mongodb://... for GridFS, or a directory path / file:// URL for the "
        "files store (default: DATA_DIR/files)",
        None,
        DOCUMENT_STORE_USERS,
        secret=True,
    ),
    EnvVar(
        "MONGODB_DATABASE",
        "database holding the GridFS bucket",
        "invoiceflow",
        DOCUMENT_STORE_USERS,
    ),
    EnvVar(
        "RABBITMQ_URL",
        "amqp://... : the local runtime's broker backend (unset: in-process)",
        None,
        frozenset(),
        secret=True,
    ),
    EnvVar(
        "K_SINK", "broker address events are POSTed to (set by the SinkBinding)", None, _EMITTERS
    ),
    EnvVar(
        "DATA_DIR",
        "where the embedded defaults keep their files (default: the user's data folder: "
        "$XDG_DATA_HOME/invoiceflow or ~/.local/share/invoiceflow on Linux, "
        "~/Library/Application Support/invoiceflow on macOS, %LOCALAPPDATA%\\invoiceflow on "
        "Windows; the same whatever the current directory)",
        None,
        _ALL,
    ),
    EnvVar(
        "JWT_ALGORITHM",
        f"{', '.join(_ALGORITHMS[:-1])} or {_ALGORITHMS[-1]}",
        "HS256",
        _TOKENS,
    ),
    EnvVar(
        "JWT_SECRET",
        "HS256 secret, at least 32 bytes",
        None,
        _TOKENS,
        secret=True,
    ),
    EnvVar(
        "JWT_PRIVATE_KEY",
        "PEM private key (RS256/EdDSA); only login holds it",
        None,
        frozenset({"login"}),
        secret=True,
    ),
    EnvVar("JWT_PUBLIC_KEY", "PEM public key (RS256/EdDSA)", None, _TOKENS),
    EnvVar("JWT_ISSUER", "iss claim", "invoiceflow", _TOKENS),
    EnvVar("JWT_AUDIENCE", "aud claim", "invoiceflow-api", _TOKENS),
    EnvVar("JWT_TTL_SECONDS", "token lifetime", "3600", frozenset({"login"})),
    EnvVar(
        "MAX_DOCUMENT_BYTES",
        "largest accepted invoice document",
        str(DEFAULT_MAX_BYTES),
        frozenset({"upload", "intake"}),
    ),
    EnvVar(
        "INVOICE_FORMATS",
        f"formats rendered for an invoice whose request names none (a subset of "
        f"{','.join(_FORMATS)}; pdf or facturx, not both)",
        ",".join(DEFAULT_FORMATS),
        frozenset({"upload", "intake", "notify"}),
    ),
    EnvVar(
        "PUBLIC_BASE_URL",
        "base URL of the HTTP API, for links",
        "http://localhost:8080",
        frozenset({"upload", "download", "intake", "notify"}),
    ),
    EnvVar(
        "EVENT_PRODUCER_KEYS",
        "keys of the producers allowed to send invoice.requested "
        "events: KEY_ID:SECRET pairs separated by commas, each secret at least 32 bytes "
        "(unset: every invoice.requested event is refused)",
        None,
        frozenset({"intake"}),
        secret=True,
    ),
    EnvVar(
        "SENDGRID_API_KEY",
        "SendGrid key; unset: emails are written as .eml to MAIL_OUTBOX_DIR",
        None,
        frozenset({"notify"}),
        secret=True,
    ),
    EnvVar(
        "SENDGRID_HOST", "SendGrid API base URL", "https://api.sendgrid.com", frozenset({"notify"})
    ),
    EnvVar(
        "MAIL_FROM",
        "sender address of the emails",
        "invoices@invoiceflow.local",
        frozenset({"notify"}),
    ),
    EnvVar(
        "MAIL_OUTBOX_DIR",
        "where .eml files go without SendGrid (default: DATA_DIR/outbox)",
        None,
        frozenset({"notify"}),
    ),
    EnvVar(
        "LOGIN_FREE_FAILURES",
        "failed logins per account (by normalised email, known or "
        "not) before each further attempt must wait",
        "5",
        frozenset({"login"}),
    ),
    EnvVar(
        "LOGIN_DELAY_SECONDS",
        "wait after the first failure past LOGIN_FREE_FAILURES; it "
        "doubles with each further failure",
        "1",
        frozenset({"login"}),
    ),
    EnvVar(
        "LOGIN_MAX_DELAY_SECONDS",
        "longest wait per account (bounds how long anyone can keep an account throttled)",
        "900",
        frozenset({"login"}),
    ),
    EnvVar(
        "LOGIN_CLIENT_BURST",
        "login attempts a client address may make at once (token bucket size)",
        "20",
        frozenset({"login"}),
    ),
    EnvVar(
        "LOGIN_CLIENT_PER_MINUTE",
        "login attempts per minute a client address gets back",
        "10",
        frozenset({"login"}),
    ),
    EnvVar(
        "LOGIN_CLIENT_IP_HEADER",
        "request header holding the client address, written by "
        "the proxy in front (X-Forwarded-For: its first hop); unset: the socket's peer",
        None,
        frozenset({"login"}),
    ),
    EnvVar(
        "LOGIN_MAX_CONCURRENT_HASHES",
        "argon2 verifications at once per process (64 MiB each)",
        "4",
        frozenset({"login"}),
    ),
    EnvVar(
        "LOGIN_HASH_WAIT_SECONDS",
        "how long a login waits for a free hash slot before a 503",
        "2",
        frozenset({"login"}),
    ),
    EnvVar(
        "OUTBOX_CLAIM_SECONDS",
        "seconds a relay owns the outbox rows it claimed: a relay "
        "that dies frees them after this (more than a send's 10 s timeout)",
        "30",
        _EMITTERS,
    ),
    EnvVar("LOG_LEVEL", f"{', '.join(_LOG_LEVELS[:-1])} or {_LOG_LEVELS[-1]}", "INFO", _ALL),
    EnvVar(
        "KNATIVE_DIR",
        "where the local runtime reads the Trigger manifests and ingress/gateway-api.yaml "
        "(the public routes; default: the manifests bundled with invoiceflow-local, in a "
        "checkout its knative/)",
        None,
        frozenset(),
    ),
    EnvVar(
        "ACCESS_LOG",
        "1: the local runtime logs every HTTP request at INFO (0: at DEBUG only)",
        "0",
        frozenset(),
    ),
    EnvVar(
        "LOCAL_WORKERS",
        "worker processes per function in the local runtime: a number, auto (one per core) "
        "or 0 (every function inside the runtime's own process, one interpreter)",
        "auto",
        frozenset(),
    ),
)


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The platform's per-user data folder for invoiceflow: the default of ``DATA_DIR``."""
    env = os.environ if environ is None else environ
    home = Path.home()
    if sys.platform == "win32":
        local = env.get("LOCALAPPDATA", "").strip()
        return Path(local) / "invoiceflow" if local else home / "AppData" / "Local" / "invoiceflow"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "invoiceflow"
    xdg = env.get("XDG_DATA_HOME", "").strip()
    # the XDG spec ignores a relative path
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".local" / "share"
    return base / "invoiceflow"


_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _scheme(url: str) -> str | None:
    """The URL's scheme, or None when it does not parse (urlparse raises ValueError on an
    unclosed '[', e.g. a password with a bracket that is not percent-encoded)."""
    try:
        return urlparse(url).scheme
    except ValueError:
        return None


@record
class Settings:
    """The parsed environment; build it with :meth:`from_env` (ENV_VARS holds every default)."""

    database_url: str = field(repr=False)
    document_store_url: str = field(repr=False)
    mongodb_database: str
    rabbitmq_url: str | None = field(repr=False)
    k_sink: str | None
    data_dir: Path
    jwt_algorithm: str
    jwt_secret: str | None = field(repr=False)
    jwt_private_key: str | None = field(repr=False)
    jwt_public_key: str | None
    jwt_issuer: str
    jwt_audience: str
    jwt_ttl_seconds: int
    max_document_bytes: int
    invoice_formats: tuple[str, ...]
    public_base_url: str
    sendgrid_api_key: str | None = field(repr=False)
    sendgrid_host: str
    mail_from: str
    mail_outbox_dir: Path
    log_level: str
    knative_dir: Path | None
    #: ACCESS_LOG: log every HTTP request of the local runtime at INFO (else at DEBUG)
    access_log: bool
    #: LOCAL_WORKERS: "auto" or a number of worker processes per function (0: in process)
    local_workers: str
    #: producer key id -> HMAC secret (EVENT_PRODUCER_KEYS; invoiceflow.signing)
    event_producer_keys: Mapping[str, str] = field(repr=False)
    login_free_failures: int
    login_delay_seconds: int
    login_max_delay_seconds: int
    login_client_burst: int
    login_client_per_minute: int
    login_client_ip_header: str | None
    login_max_concurrent_hashes: int
    login_hash_wait_seconds: int
    outbox_claim_seconds: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        problems: list[Problem] = []

        def get(name: str) -> str | None:
            """The variable's value, else its default in ENV_VARS (None if it has none)."""
            value = env.get(name)
            if value is None or value.strip() == "":
                return _BY_NAME[name].default
            return value.strip()

        def given(name: str) -> str:
            """The value of a variable that has a default in ENV_VARS."""
            value = get(name)
            if value is None:
                raise LookupError(f"{name} has no default in ENV_VARS")
            return value

        def bad(name: str, message: str) -> None:
            problems.append(Problem(f"/{name}", message))

        def url(name: str, value: str, schemes: tuple[str, ...], message: str) -> None:
            scheme = _scheme(value)
            if scheme is None:
                bad(
                    name,
                    "is not a valid URL (a '[' or ']' outside an IPv6 address "
                    "must be percent-encoded)",
                )
            elif scheme not in schemes:
                bad(name, message)

        # the derived defaults (documented in ENV_VARS' help): all under DATA_DIR
        data_dir = Path(get("DATA_DIR") or default_data_dir(env))
        database_url = get("DATABASE_URL") or f"sqlite:///{data_dir / 'invoiceflow.db'}"
        url(
            "DATABASE_URL",
            database_url,
            ("postgresql", "postgres", "sqlite"),
            "must start with postgresql:// or sqlite:///",
        )
        docs_url = get("MONGODB_URL") or str(data_dir / "files")
        rabbit = get("RABBITMQ_URL")
        if rabbit:
            url("RABBITMQ_URL", rabbit, ("amqp", "amqps"), "must start with amqp:// or amqps://")
        sink = get("K_SINK")
        if sink:
            url("K_SINK", sink, ("http", "https"), "must be an http(s) URL")

        algorithm = given("JWT_ALGORITHM")
        secret = get("JWT_SECRET")
        if algorithm not in _ALGORITHMS:
            bad("JWT_ALGORITHM", f"must be one of {', '.join(_ALGORITHMS)}")
        elif algorithm == "HS256" and secret is not None and len(secret.encode()) < 32:
            bad("JWT_SECRET", "must be at least 32 bytes for HS256")

        def integer(name: str, low: int) -> int:
            raw = given(name)
            try:
                value = int(raw)
            except ValueError:
                bad(name, f"must be a whole number, got {raw!r}")
                return low
            if value < low:
                bad(name, f"must be at least {low}")
            return value

        ip_header = get("LOGIN_CLIENT_IP_HEADER")
        if ip_header is not None and not re.fullmatch(r"[A-Za-z0-9-]{1,64}", ip_header):
            bad("LOGIN_CLIENT_IP_HEADER", "must be an HTTP header name, e.g. X-Forwarded-For")

        login_delay = integer("LOGIN_DELAY_SECONDS", 1)
        login_max_delay = integer("LOGIN_MAX_DELAY_SECONDS", 1)
        if login_max_delay < login_delay:
            bad("LOGIN_MAX_DELAY_SECONDS", "must be at least LOGIN_DELAY_SECONDS")

        formats = tuple(split_formats(given("INVOICE_FORMATS")))
        for problem in check_formats(formats, "/INVOICE_FORMATS"):
            problems.append(problem)
        level = given("LOG_LEVEL").upper()
        if level not in _LOG_LEVELS:
            bad("LOG_LEVEL", f"must be {', '.join(_LOG_LEVELS[:-1])} or {_LOG_LEVELS[-1]}")
        access_log = given("ACCESS_LOG")
        if access_log not in ("0", "1"):
            bad("ACCESS_LOG", "must be 0 or 1")
        local_workers = given("LOCAL_WORKERS").lower()
        if local_workers != "auto" and not (
            local_workers.isascii() and local_workers.isdigit() and int(local_workers) <= 64
        ):
            bad("LOCAL_WORKERS", "must be auto or a whole number from 0 to 64")

        producer_keys: dict[str, str] = {}
        keys = get("EVENT_PRODUCER_KEYS")
        for pair in keys.split(",") if keys else ():
            if not pair.strip():
                continue
            key_id, colon, secret_value = pair.strip().partition(":")
            if not colon or not _KEY_ID.fullmatch(key_id):
                bad(
                    "EVENT_PRODUCER_KEYS",
                    "must be KEY_ID:SECRET pairs separated by commas "
                    "(key ids: letters, digits, '.', '_', '-', at most 64)",
                )
            elif len(secret_value.encode()) < 32:
                bad(
                    "EVENT_PRODUCER_KEYS", f"the secret of key {key_id!r} must be at least 32 bytes"
                )
            elif key_id in producer_keys:
                bad("EVENT_PRODUCER_KEYS", f"key {key_id!r} is given twice")
            else:
                producer_keys[key_id] = secret_value

        settings = cls(
            database_url=database_url,
            document_store_url=docs_url,
            mongodb_database=given("MONGODB_DATABASE"),
            rabbitmq_url=rabbit,
            k_sink=sink,
            data_dir=data_dir,
            jwt_algorithm=algorithm,
            jwt_secret=secret,
            jwt_private_key=get("JWT_PRIVATE_KEY"),
            jwt_public_key=get("JWT_PUBLIC_KEY"),
            jwt_issuer=given("JWT_ISSUER"),
            jwt_audience=given("JWT_AUDIENCE"),
            jwt_ttl_seconds=integer("JWT_TTL_SECONDS", 60),
            max_document_bytes=integer("MAX_DOCUMENT_BYTES", 1024),
            invoice_formats=formats,
            public_base_url=given("PUBLIC_BASE_URL").rstrip("/"),
            sendgrid_api_key=get("SENDGRID_API_KEY"),
            sendgrid_host=given("SENDGRID_HOST").rstrip("/"),
            mail_from=given("MAIL_FROM"),
            mail_outbox_dir=Path(get("MAIL_OUTBOX_DIR") or data_dir / "outbox"),
            log_level=level,
            knative_dir=Path(knative) if (knative := get("KNATIVE_DIR")) else None,
            access_log=access_log == "1",
            local_workers=local_workers,
            event_producer_keys=producer_keys,
            login_free_failures=integer("LOGIN_FREE_FAILURES", 1),
            login_delay_seconds=login_delay,
            login_max_delay_seconds=login_max_delay,
            login_client_burst=integer("LOGIN_CLIENT_BURST", 1),
            login_client_per_minute=integer("LOGIN_CLIENT_PER_MINUTE", 1),
            login_client_ip_header=ip_header,
            login_max_concurrent_hashes=integer("LOGIN_MAX_CONCURRENT_HASHES", 1),
            login_hash_wait_seconds=integer("LOGIN_HASH_WAIT_SECONDS", 0),
            outbox_claim_seconds=integer("OUTBOX_CLAIM_SECONDS", OUTBOX_CLAIM_MINIMUM),
        )
        if problems:
            raise ConfigError(problems)
        return settings


_BY_NAME = {var.name: var for var in ENV_VARS}
