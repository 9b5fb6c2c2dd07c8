"""A page's Content-Security-Policy and the live-reload script: which policies block it,
and the one log line that says so with the fix."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import webtest
from logrecords import Records, devreload_logger_as_it_was, devreload_records

from devreload.web import livereload
from devreload.web.livereload import EventHub, csp_blocks_script
from devreload.web.wsgi import LiveReload, StartResponse


@pytest.fixture(autouse=True)
def _logger_as_it_was() -> Iterator[None]:
    with devreload_logger_as_it_was():
        yield


@pytest.mark.parametrize(
    ("policies", "blocking"),
    [
        (["default-src 'self'"], "default-src 'self'"),
        (["script-src 'self' https://cdn.example"], "script-src 'self' https://cdn.example"),
        (["default-src 'self'; script-src 'self' 'unsafe-inline'"], None),
        (["script-src 'nonce-abc123' 'strict-dynamic'"], None),
        (["script-src 'unsafe-inline' 'sha256-AAAA'"], "script-src 'unsafe-inline' 'sha256-aaaa'"),
        (["script-src 'unsafe-inline' 'strict-dynamic'"],
         "script-src 'unsafe-inline' 'strict-dynamic'"),
        (["script-src 'unsafe-inline'; script-src-elem 'self'"], "script-src-elem 'self'"),
        (["img-src 'self'; style-src 'self'"], None),
        (["script-src 'unsafe-inline'", "default-src 'none'"], "default-src 'none'"),
        ([], None),
    ],
)
def test_which_policies_block_the_inline_script(policies: list[str],
                                                 blocking: str | None) -> None:
    assert csp_blocks_script(policies) == blocking


def csp_app(policy: str) -> Any:
    page = b"<html><body>x</body></html>"

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/html"),
                                  ("Content-Security-Policy", policy)])
        return [page]

    return app


def csp_warnings(records: Records) -> list[str]:
    return records.messages("Content-Security-Policy")


def test_a_blocking_csp_is_logged_once_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(livereload.this_process(), "csp_warned", False)
    app = webtest.TestApp(LiveReload(csp_app("default-src 'self'"), hub=EventHub()))
    with devreload_records() as records:
        for _ in range(3):
            assert b"data-devreload" in app.get("/").body
    (warning,) = csp_warnings(records)
    assert "default-src 'self'" in warning and "nonce" in warning
    assert "live_reload = false" in warning
    assert records.records[0].levelname == "WARNING"


@pytest.mark.parametrize("policy", ["script-src 'nonce-n0nce'", "script-src 'unsafe-inline'",
                                    "frame-ancestors 'none'"])
def test_a_csp_that_lets_the_script_run_is_not_logged(
    policy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(livereload.this_process(), "csp_warned", False)
    app = webtest.TestApp(LiveReload(csp_app(policy), hub=EventHub()))
    with devreload_records() as records:
        app.get("/")
    assert csp_warnings(records) == []
