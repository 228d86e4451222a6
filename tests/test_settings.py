"""Settings: every variable read in one place, every problem reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from invoiceflow.errors import ConfigError
from invoiceflow.settings import ENV_VARS, FUNCTIONS, Settings, default_data_dir


def test_embedded_defaults() -> None:
    s = Settings.from_env({})
    data = default_data_dir({})
    assert s.data_dir == data and data.is_absolute()
    assert s.database_url == f"sqlite:///{data / 'invoiceflow.db'}"
    assert s.document_store_url == str(data / "files")
    assert s.rabbitmq_url is None and s.k_sink is None
    assert s.invoice_formats == ("pdf", "xlsx")
    assert s.jwt_ttl_seconds == 3600 and s.max_document_bytes == 2 * 1024 * 1024
    assert s.mail_outbox_dir == data / "outbox"


def test_the_default_data_folder_is_the_platforms_whatever_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path / "home"))
    home = tmp_path / "home"
    monkeypatch.setattr(sys, "platform", "linux")
    assert default_data_dir({}) == home / ".local" / "share" / "invoiceflow"
    xdg = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    assert default_data_dir(xdg) == tmp_path / "xdg" / "invoiceflow"
    assert Settings.from_env(xdg).data_dir == tmp_path / "xdg" / "invoiceflow"
    relative = {"XDG_DATA_HOME": "xdg"}  # the XDG spec: a relative path is ignored
    assert default_data_dir(relative) == home / ".local" / "share" / "invoiceflow"
    monkeypatch.chdir(tmp_path)
    assert default_data_dir({}) == home / ".local" / "share" / "invoiceflow"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert default_data_dir(xdg) == home / "Library" / "Application Support" / "invoiceflow"
    monkeypatch.setattr(sys, "platform", "win32")
    local = {"LOCALAPPDATA": str(tmp_path / "Local")}
    assert default_data_dir(local) == tmp_path / "Local" / "invoiceflow"
    assert default_data_dir({}) == home / "AppData" / "Local" / "invoiceflow"
    assert Settings.from_env({"DATA_DIR": "/srv/data"}).data_dir == Path("/srv/data")


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.from_env(
            {
                "DATABASE_URL": "mysql://db",
                "RABBITMQ_URL": "http://x",
                "K_SINK": "ftp://x",
                "JWT_ALGORITHM": "none",
                "JWT_TTL_SECONDS": "soon",
                "MAX_DOCUMENT_BYTES": "10",
                "INVOICE_FORMATS": "pdf,docx",
                "LOG_LEVEL": "LOUD",
            }
        )
    assert {p.pointer for p in exc.value.problems} == {
        "/DATABASE_URL",
        "/RABBITMQ_URL",
        "/K_SINK",
        "/JWT_ALGORITHM",
        "/JWT_TTL_SECONDS",
        "/MAX_DOCUMENT_BYTES",
        "/INVOICE_FORMATS",
        "/LOG_LEVEL",
    }
    assert exc.value.status == 503


def test_secrets_never_show_in_repr() -> None:
    s = Settings.from_env(
        {
            "JWT_SECRET": "s" * 40,
            "SENDGRID_API_KEY": "SG.very-secret",
            "DATABASE_URL": "postgresql://u:pw@h/db",
        }
    )
    text = repr(s)
    assert "s" * 40 not in text and "SG.very-secret" not in text and "pw@" not in text


def test_the_table_covers_every_setting_and_the_readme_documents_it() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = [line.split("|") for line in readme.splitlines() if line.startswith("| `")]
    for var in ENV_VARS:
        row = next((r for r in rows if f"`{var.name}`" in r[1]), None)
        assert row is not None, f"{var.name} is not in README.md's table of settings"
        if var.default is not None:  # the README quotes the default of ENV_VARS
            assert f"`{var.default}`" in row[2], f"README.md gives {var.name} another default"
        assert var.used_by <= set(FUNCTIONS)


def test_event_producer_keys_are_parsed_checked_and_never_shown() -> None:
    secret = "p" * 40
    s = Settings.from_env({"EVENT_PRODUCER_KEYS": f"erp:{secret}, shop-2:{'q' * 32}"})
    assert dict(s.event_producer_keys) == {"erp": secret, "shop-2": "q" * 32}
    assert secret not in repr(s)
    assert Settings.from_env({}).event_producer_keys == {}
    for bad in ("erp", f"bad id:{secret}", "erp:short", f"erp:{secret},erp:{secret}"):
        with pytest.raises(ConfigError) as exc:
            Settings.from_env({"EVENT_PRODUCER_KEYS": bad})
        assert [p.pointer for p in exc.value.problems] == ["/EVENT_PRODUCER_KEYS"], bad
        assert secret not in str(exc.value)


def test_the_outbox_claim_outlasts_a_send() -> None:
    from invoiceflow import events
    from invoiceflow.settings import OUTBOX_CLAIM_MINIMUM

    assert OUTBOX_CLAIM_MINIMUM > events.DEFAULT_TIMEOUT
    assert Settings.from_env({}).outbox_claim_seconds == 30
    assert Settings.from_env({"OUTBOX_CLAIM_SECONDS": "11"}).outbox_claim_seconds == 11
    with pytest.raises(ConfigError) as exc:
        Settings.from_env({"OUTBOX_CLAIM_SECONDS": "10"})
    assert [p.pointer for p in exc.value.problems] == ["/OUTBOX_CLAIM_SECONDS"]


def test_every_default_is_written_once_in_the_table() -> None:
    """ENV_VARS is the only home of a default: Settings has no field defaults, from_env no
    literal fallback, and each default parses to what an empty environment gives."""
    import ast
    import dataclasses
    import inspect
    import textwrap

    assert all(
        f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        for f in dataclasses.fields(Settings)
    )
    source = ast.parse(textwrap.dedent(inspect.getsource(Settings.from_env)))
    fallbacks = [
        ast.unparse(node)
        for node in ast.walk(source)
        if isinstance(node, ast.BoolOp)
        and isinstance(node.op, ast.Or)
        and isinstance(node.values[-1], ast.Constant)
    ]
    assert fallbacks == []
    empty = Settings.from_env({})
    defaults = [var for var in ENV_VARS if var.default is not None]
    assert {"LOG_LEVEL", "LOGIN_FREE_FAILURES"} <= {var.name for var in defaults}
    # the computed defaults (DATA_DIR's is the platform's data folder) are named in the help
    computed = {var.name: var.help for var in ENV_VARS if var.name in ("DATA_DIR", "DATABASE_URL")}
    assert "~/.local/share/invoiceflow" in computed["DATA_DIR"]
    assert "DATA_DIR" in computed["DATABASE_URL"]
    for var in defaults:
        assert var.default is not None
        assert Settings.from_env({var.name: var.default}) == empty, var.name


def test_a_variable_overrides_its_default() -> None:
    s = Settings.from_env(
        {
            "DATA_DIR": "/srv/data",
            "JWT_ISSUER": "issuer",
            "LOGIN_FREE_FAILURES": "7",
            "LOG_LEVEL": "debug",
            "PUBLIC_BASE_URL": "https://invoices.example/",
        }
    )
    assert s.data_dir == Path("/srv/data") and s.jwt_issuer == "issuer"
    assert s.login_free_failures == 7 and s.log_level == "DEBUG"
    assert s.public_base_url == "https://invoices.example"
    assert s.database_url == f"sqlite:///{Path('/srv/data') / 'invoiceflow.db'}"
    assert s.mail_outbox_dir == Path("/srv/data") / "outbox"


def test_invoice_formats_take_every_output_format_but_pdf_with_facturx() -> None:
    from invoiceflow.outputs import OUTPUT_FORMATS

    assert set(OUTPUT_FORMATS) == {"pdf", "xlsx", "cii", "ubl", "facturx"}
    s = Settings.from_env({"INVOICE_FORMATS": "facturx, xlsx,cii,ubl"})
    assert s.invoice_formats == ("facturx", "xlsx", "cii", "ubl")
    with pytest.raises(ConfigError) as exc:
        Settings.from_env({"INVOICE_FORMATS": "pdf,facturx,html"})
    messages = [p.message for p in exc.value.problems if p.pointer == "/INVOICE_FORMATS"]
    assert len(messages) == 2
    assert "'html' is not an output format" in messages[0]
    assert "pdf and facturx, not both" in messages[1]
    with pytest.raises(ConfigError):
        Settings.from_env({"INVOICE_FORMATS": " , "})


def test_a_malformed_url_or_number_is_a_listed_problem_not_a_traceback() -> None:
    """urlparse raises ValueError on an unclosed '[' (a password with a bracket not encoded),
    and int() refuses digits str.isdigit() takes ('²'): both are ConfigError problems, listed
    with the rest, and the value (which may hold a password) is not quoted."""
    with pytest.raises(ConfigError) as exc:
        Settings.from_env(
            {
                "DATABASE_URL": "postgresql://app:p[ss@db/invoiceflow",
                "RABBITMQ_URL": "amqp://guest:g[uest@mq/",
                "K_SINK": "http://[broker",
                "LOCAL_WORKERS": "²",
                "LOG_LEVEL": "LOUD",
            }
        )
    assert {p.pointer for p in exc.value.problems} == {
        "/DATABASE_URL",
        "/RABBITMQ_URL",
        "/K_SINK",
        "/LOCAL_WORKERS",
        "/LOG_LEVEL",
    }
    assert "p[ss" not in str(exc.value) and "g[uest" not in str(exc.value)
