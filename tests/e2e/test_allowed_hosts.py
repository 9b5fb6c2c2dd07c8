"""devreload's own pages in real processes: the error page of a broken app answers only
localhost, IP literals and allowed names (DNS rebinding), and shows the failing line in
context with library frames folded; a page whose CSP blocks the live-reload script is
said once in the log."""

from __future__ import annotations

import http.client
import re
from pathlib import Path

from helpers import Proc, save_like_editor, wait_until
from served import SERVING_RE, Spawn, devreload_serve, wait_body

#: The factory of tests/apps/serve_apps.py, made to fail inside a library (json), so
#: that the traceback has PasteDeploy's frames, the app's, then the standard library's.
BROKEN_FACTORY = '''\
def make_wsgi(global_config: dict[str, str] | None = None, **settings: str) -> WSGIApp:
    import json

    config = json.loads(settings.get("config", "{broken"))
    return config
'''
REFUSED = "devreload: Host 'attacker.example' is not allowed; add it with --allowed-host"


def request(port: int, host: str, path: str = "/", accept: str = "text/html"
            ) -> tuple[int, dict[str, str], str]:
    """GET with this exact Host header."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        conn.putheader("Accept", accept)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


def serve_broken(spawn: Spawn, project: Path, *args: str) -> tuple[Proc, int]:
    """``devreload serve serve_token.ini --reload``, the app working, then broken."""
    proc = devreload_serve(spawn, "serve_token.ini", "--reload", *args,
                           apps=["serve_apps.py", "serve_token.ini"])
    url = proc.wait_for(SERVING_RE)[1]
    port = int(url.rsplit(":", 1)[1].strip("/"))
    wait_body(url, "wsgi one")
    source = project / "serve_apps.py"
    text = source.read_text()
    start = text.index("def make_wsgi(")
    end = text.index("\n\n\n", start)
    save_like_editor(source, text[:start] + BROKEN_FACTORY + text[end:])

    def broken() -> bool:
        try:
            return request(port, f"localhost:{port}")[0] == 500
        except OSError:
            return False

    wait_until(broken, timeout=15, message="the error page never answered")
    return proc, port


def test_the_error_page_refuses_a_foreign_host(spawn: Spawn, project: Path) -> None:
    proc, port = serve_broken(spawn, project)
    status, headers, body = request(port, "attacker.example")
    assert status == 403 and body.startswith(REFUSED)
    assert "JSONDecodeError" not in body and "X-Devreload-Error" not in headers
    status, _, body = request(port, "attacker.example", path="/__devreload__/events")
    assert status == 403 and "event:" not in body
    proc.wait_for(r"refused a request for Host 'attacker.example'")
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost"):
        status, headers, body = request(port, host)
        assert status == 500 and headers["X-Devreload-Error"] == "1" and "JSONDecodeError" in body


def test_an_allowed_host_gets_the_error_page(spawn: Spawn, project: Path) -> None:
    _, port = serve_broken(spawn, project, "--allowed-host", "attacker.example")
    status, _, body = request(port, "attacker.example:80")
    assert status == 500 and "JSONDecodeError" in body
    assert request(port, "other.example")[0] == 403


def test_the_page_shows_the_failing_line_and_folds_library_frames(
    spawn: Spawn, project: Path
) -> None:
    _, port = serve_broken(spawn, project)
    _, _, page = request(port, "localhost")
    failing = re.findall(r'<mark class="failing"><span class="no">(\d+)</span>(.*?)</mark>', page)
    assert len(failing) == 1
    number, line = failing[0]
    lines = (project / "serve_apps.py").read_text().splitlines()
    assert lines[int(number) - 1].endswith('json.loads(settings.get("config", "{broken"))')
    assert line == "    config = json.loads(settings.get(&quot;config&quot;, &quot;{broken&quot;))"
    # Numbered lines around it.
    assert f'<span class="no">{int(number) - 1}</span>\n' in page  # the blank line above
    assert f'<span class="no">{int(number) - 2}</span>    import json' in page
    assert f'<span class="no">{int(number) + 1}</span>    return config' in page
    # The app's frame first, library frames (PasteDeploy's among them) folded after it.
    body = page.split("<body>", 1)[1]
    details = body.index('<details class="library">')
    assert body.index("serve_apps.py, line") < details
    summary = re.search(r"<summary>(\d+) library frames \(([^)]*)\)</summary>", body)
    assert summary is not None and "paste" in summary[2] and "json" in summary[2]
    assert "paste/deploy/loadwsgi.py" in body[details:]
    assert "loadwsgi.py" not in body[:details]
    # The plain text: the app's frame and the exception, no library frame.
    _, _, text = request(port, "localhost", accept="*/*")
    assert "serve_apps.py" in text and "JSONDecodeError" in text
    assert "loadwsgi" not in text and "json/decoder.py" not in text and "<" not in text


CSP_APP = '''\
def app(environ, start_response):
    body = b"<!doctype html><html><body><p>strict</p></body></html>"
    start_response("200 OK", [
        ("Content-Type", "text/html"),
        ("Content-Security-Policy", "default-src 'self'"),
        ("Content-Length", str(len(body))),
    ])
    return [body]
'''


def test_a_csp_that_blocks_live_reload_is_said_once(spawn: Spawn, project: Path) -> None:
    (project / "cspapp.py").write_text(CSP_APP)
    proc = devreload_serve(spawn, "cspapp:app", "--port", "0", "--reload")
    url = proc.wait_for(SERVING_RE)[1]
    for _ in range(3):
        assert "data-devreload" in wait_body(url, "strict")
    proc.wait_for(r"Content-Security-Policy \(default-src 'self'\) blocks the live-reload")
    assert proc.count(r"Content-Security-Policy") == 1
    line = next(line for line in proc.lines if "Content-Security-Policy" in line)
    assert "nonce" in line and "live_reload = false" in line
