"""``invoiceflow branding show|set``: a user's branding settings from the command line, in
the same repository the API serves them from."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli import run


def test_branding_set_and_show_round_trip_and_invalid_files_change_nothing(
    tmp_path: Path,
) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "DATA_DIR": str(tmp_path / "data"),
        "PATH": "/usr/bin:/bin",
    }
    added = run(
        "users", "add", "ann@example.com", "--password-stdin", env=env, stdin="long-enough-pw\n"
    )
    assert added.returncode == 0, added.stderr
    shown = run("branding", "show", "ann@example.com", env=env)
    assert shown.returncode == 0 and json.loads(shown.stdout) == {}

    settings = {"layout": "compact", "accent_color": "#0F766E", "currency": "EUR"}
    path = tmp_path / "branding.json"
    path.write_text(json.dumps(settings))
    stored = run("branding", "set", "ann@example.com", str(path), env=env)
    assert stored.returncode == 0, stored.stderr
    assert "stored the branding settings of ann@example.com (3 fields)" in stored.stdout
    assert json.loads(run("branding", "show", "ANN@example.com", env=env).stdout) == settings

    bad = run(
        "branding",
        "set",
        "ann@example.com",
        "-",
        env=env,
        stdin='{"layout": "fancy", "currency": "ZZZ", "colour": "red"}',
    )
    assert bad.returncode == 2
    for pointer in ("/layout", "/currency", "/colour"):
        assert f"  {pointer}: " in bad.stderr, bad.stderr
    assert json.loads(run("branding", "show", "ann@example.com", env=env).stdout) == settings

    cleared = run("branding", "set", "ann@example.com", "-", env=env, stdin="{}")
    assert cleared.returncode == 0
    assert json.loads(run("branding", "show", "ann@example.com", env=env).stdout) == {}

    nobody = run("branding", "show", "nobody@example.com", env=env)
    assert nobody.returncode == 2 and "no user with the email nobody@example.com" in nobody.stderr
    missing = run("branding", "set", "ann@example.com", str(tmp_path / "nope.json"), env=env)
    assert missing.returncode == 2 and "nope.json" in missing.stderr
