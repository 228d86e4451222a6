"""The attack suite is one marker-selectable set: ``pytest -m attack`` (from the repository
root, so this file is loaded) runs the tests here and the attack tests that live beside the
code they attack. See README.md in this folder."""

from __future__ import annotations

import pytest

#: attack tests kept beside their code (node-id prefixes, relative to the repository root)
ELSEWHERE = (
    # tokens: alg none, algorithm confusion, expiry, issuer, audience, tampering, disabled users
    "tests/api/test_login.py::test_token_attacks_are_rejected",
    "tests/api/test_login.py::test_rs256_only_login_holds_the_private_key_and_confusion_fails",
    "tests/api/test_login.py::test_disabled_users_cannot_log_in_and_their_tokens_stop_working",
    "tests/api/test_login.py::test_malformed_login_requests_are_401_not_500",
    "tests/api/test_upload.py::test_upload_needs_a_valid_token",
    # other people's, missing and malformed ids are the same 404
    "tests/api/test_download.py::test_other_peoples_missing_and_malformed_ids_are_the_same_404",
    # the same event through every SDK and content mode is one invoice
    "tests/test_cloudevents_sdks.py::test_the_same_event_in_both_modes_is_one_invoice",
    # brute force on /login: per account, per client address, bounded hashes
    "tests/api/test_login.py::test_repeated_failures_get_429_with_retry_after_even_for_the_right_password",
    "tests/api/test_login.py::test_unknown_emails_are_throttled_exactly_like_known_ones",
    "tests/api/test_login.py::test_each_client_address_has_a_token_bucket",
    "tests/api/test_login.py::test_concurrent_logins_never_run_more_hashes_than_the_slots",
    # forged and unsigned events, the public port of the local runtime
    "tests/api/test_intake.py",
    "tests/runtime/test_local_runtime.py::test_the_public_port_serves_only_the_public_paths",
    # hostile inputs: number bombs, nesting, NUL, odd field names, cursors
    "tests/api/test_hostile_inputs.py",
    "tests/domain/test_number_bombs.py",
)
#: words that make any test an attack test wherever it lives (header injection, number bombs,
#: brute force, forged events, ...): name such tests with one of them
KEYWORDS = ("attack", "header_injection", "number_bomb", "brute_force", "forged", "cross_user")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        name = item.nodeid.split("[")[0]
        test = name.rsplit("::", 1)[-1].lower()
        if name.startswith(ELSEWHERE) or any(word in test for word in KEYWORDS):
            item.add_marker(pytest.mark.attack)
