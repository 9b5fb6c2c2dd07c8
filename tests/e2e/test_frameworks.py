"""Flask, Django, Pyramid and FastAPI projects, made the way each framework makes them
(tests/projects/), served the way their users would run them under devreload, as real
processes on real ports: a template edit, a code edit and a config edit each show at the
next request, and errors reach the browser."""

from __future__ import annotations

import http.client
import re
import shutil
import time
from pathlib import Path

from helpers import save_like_editor, wait_until
from served import SERVING_RE, Spawn, devreload_serve, edit, stop, wait_body

PROJECTS = Path(__file__).resolve().parents[1] / "projects"
RESTARTED = r"changed; restarted in \d+ ms"


def copy_project(name: str, project: Path) -> None:
    shutil.copytree(PROJECTS / name, project, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))


def ask(url: str, accept: str = "text/html") -> tuple[int, dict[str, str], str]:
    """Status, headers (names in lower case) and body of one GET on a new connection; for
    HTML, sent the way a browser navigates."""
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        navigate = {"Sec-Fetch-Dest": "document"} if accept == "text/html" else {}
        conn.request("GET", "/" + path, headers={"Accept": accept, **navigate})
        response = conn.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read().decode()
    finally:
        conn.close()


Answer = tuple[int, dict[str, str], str]


def answer_with(url: str, status: int, accept: str = "text/html") -> Answer:
    """Poll ``url`` until it answers ``status``; that answer."""

    def matching() -> Answer | None:
        answer = ask(url, accept)
        return answer if answer[0] == status else None

    return wait_until(matching, timeout=15)


# --------------------------------------------------------------------------- Flask


def test_flaskr_follows_templates_code_and_instance_config(spawn: Spawn, project: Path) -> None:
    copy_project("flaskr", project)
    proc = devreload_serve(spawn, "flaskr:create_app()", "--reload", "--port", "0")
    url = proc.wait_for(SERVING_RE, timeout=20)[1]
    assert wait_body(f"{url}/hello", r"^Hello from instance/config\.py")
    page = wait_body(f"{url}/auth/login", r"<h1>Log In</h1>")
    assert "data-devreload" in page and "</body>" not in page  # the tutorial's base.html
    edit(project / "flaskr/templates/auth/login.html", "Log In{% endblock %}",
         "Sign In{% endblock %}")
    wait_body(f"{url}/auth/login", r"<h1>Sign In</h1>")
    edit(project / "instance/config.py", "Hello from instance/config.py", "Edited config")
    wait_body(f"{url}/hello", r"^Edited config")
    edit(project / "flaskr/__init__.py", "'Hello, World!')", "'Hello, World!').upper()")
    wait_body(f"{url}/hello", r"^EDITED CONFIG")
    assert stop(proc) == 0
    assert "Traceback" not in proc.output


def test_flaskr_request_exception_shows_the_traceback(spawn: Spawn, project: Path) -> None:
    copy_project("flaskr", project)
    proc = devreload_serve(spawn, "flaskr:create_app()", "--reload", "--port", "0")
    url = proc.wait_for(SERVING_RE, timeout=20)[1]
    wait_body(f"{url}/auth/login", r"<h1>Log In</h1>")
    edit(project / "flaskr/auth.py", "return render_template('auth/login.html')",
         "return render_template('auth/login.html', user=undefined_name)")
    _, headers, page = answer_with(f"{url}/auth/login", 500)
    assert headers["x-devreload-error"] == "request"
    assert headers["content-type"].startswith("text/html")
    assert "flaskr/auth.py" in page and "NameError: name &#x27;undefined_name&#x27;" in page
    assert "data-devreload" in page  # live reload brings the page back after the fix
    assert "__debugger__" not in page and "Werkzeug" not in page
    status, headers, text = ask(f"{url}/auth/login", accept="text/plain")
    assert status == 500 and headers["content-type"].startswith("text/plain")
    assert text.startswith("Traceback (most recent call last):\n")
    assert text.rstrip().endswith("NameError: name 'undefined_name' is not defined")
    assert "site-packages" not in text  # the app's own frames only
    # Logged once per failing request, by devreload alone (Flask propagates, waitress
    # never sees it).
    wait_until(lambda: proc.count(r"GET /auth/login raised an exception") == 2)
    assert proc.output.count("NameError: name 'undefined_name'") == 2
    edit(project / "flaskr/auth.py", "render_template('auth/login.html', user=undefined_name)",
         "render_template('auth/login.html')")
    wait_body(f"{url}/auth/login", r"<h1>Log In</h1>")
    assert stop(proc) == 0


# --------------------------------------------------------------------------- Django


def _django_answers(url: str) -> dict[str, tuple[int, str]]:
    """What the project answers on a few pages, minus what differs on every answer."""
    answers = {}
    for path in ("/polls/", "/admin/", "/admin/login/", "/static/admin/css/base.css", "/nope"):
        status, headers, body = ask(url + path)
        body = re.sub(r'data-boot="[^"]*"', "", body)  # the live reload tag names the worker
        body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", body)
        answers[path] = (status, headers.get("location", "") + body)
    return answers


def test_mysite_serves_static_files_follows_edits_and_reloads_alike(
    spawn: Spawn, project: Path
) -> None:
    copy_project("mysite", project)
    proc = devreload_serve(spawn, "mysite.wsgi:application", "--reload", "--port", "0")
    url = proc.wait_for(SERVING_RE, timeout=20)[1]
    wait_body(f"{url}/polls/", r"You&#x27;re at the polls index")
    first = _django_answers(url)
    assert first["/static/admin/css/base.css"][0] == 200  # DEBUG: served like runserver
    assert first["/admin/"] == (302, "/admin/login/?next=/admin/")
    assert first["/admin/login/"][0] == 200 and "admin/css/base.css" in first["/admin/login/"][1]
    assert first["/nope"][0] == 404 and "Using the URLconf defined in" in first["/nope"][1]
    # A reloaded worker (forked from the template, unless DEVRELOAD_WORKER=spawn) answers
    # exactly like the first.
    admin = project / "polls/admin.py"
    save_like_editor(admin, admin.read_text())
    proc.wait_for(r"polls/admin\.py " + RESTARTED, timeout=15)
    assert _django_answers(url) == first
    edit(project / "polls/templates/polls/index.html", "Installed apps:", "Apps:")
    wait_body(f"{url}/polls/", r"<p>Apps: polls, admin")
    edit(project / "polls/views.py", "You're at the polls index.", "Edited view.")
    wait_body(f"{url}/polls/", r"<h1>Hello, world. Edited view.</h1>")
    assert stop(proc) == 0
    assert "Traceback" not in proc.output
    assert not (project / "db.sqlite3").exists()


def test_mysite_broken_view_shows_the_error_page_at_once(spawn: Spawn, project: Path) -> None:
    copy_project("mysite", project)
    proc = devreload_serve(spawn, "mysite.wsgi:application", "--reload", "--port", "0")
    url = proc.wait_for(SERVING_RE, timeout=20)[1]
    wait_body(f"{url}/polls/", r"You&#x27;re at the polls index")
    views = project / "polls/views.py"
    good = views.read_text()
    save_like_editor(views, good + "\n\ndef broken(:\n    pass\n")
    saved = time.monotonic()
    answers = []

    def error_page() -> tuple[int, dict[str, str], str] | None:
        answer = ask(f"{url}/polls/", accept="text/plain")
        answers.append(answer[0])
        return answer if "x-devreload-error" in answer[1] else None

    status, headers, text = wait_until(error_page, timeout=15)
    took = time.monotonic() - saved
    # The URLconf is imported at start: the broken view fails the start, not each request
    # (no Django technical 500 page in between, only the old worker's answers).
    assert set(answers[:-1]) <= {200}, answers
    assert status == 500 and headers["x-devreload-error"] == "1"
    assert 'polls/views.py", line' in text and "\nSyntaxError: invalid syntax\n" in text
    assert text.rstrip().endswith("SyntaxError: invalid syntax (views.py, line 14)")
    assert took < 10, f"the error page took {took:.1f} s"
    assert "Internal Server Error: /polls/" not in proc.output  # Django's request log
    # One summary line in the log, as for every failed start.
    proc.wait_for(r"^devreload: preparing mysite\.wsgi:application failed at polls/views\.py:"
                  r"\d+: SyntaxError: invalid syntax", start=0)
    save_like_editor(views, good)
    wait_body(f"{url}/polls/", r"You&#x27;re at the polls index")
    assert stop(proc) == 0


def test_mysite_broken_view_without_reload_is_one_line(spawn: Spawn, project: Path) -> None:
    copy_project("mysite", project)
    views = project / "polls/views.py"
    views.write_text(views.read_text() + "\n\ndef broken(:\n    pass\n")
    proc = devreload_serve(spawn, "mysite.wsgi:application", "--port", "0")
    assert proc.wait_exit(timeout=20) == 1
    assert [line for line in proc.lines if line.strip()] == [
        "devreload: preparing mysite.wsgi:application failed at polls/views.py:14: "
        "SyntaxError: invalid syntax (views.py, line 14)"
    ]


def test_mysite_asgi_serves_static_files_under_uvicorn(spawn: Spawn, project: Path) -> None:
    copy_project("mysite", project)
    proc = devreload_serve(spawn, "mysite.asgi:application", "--reload", "--port", "0")
    url = proc.wait_for(SERVING_RE, timeout=20)[1]
    wait_body(f"{url}/polls/", r"You&#x27;re at the polls index")
    status, headers, _ = ask(f"{url}/static/admin/css/base.css", accept="text/css")
    assert status == 200 and headers["content-type"].startswith("text/css")
    edit(project / "polls/views.py", "You're at the polls index.", "Edited view.")
    wait_body(f"{url}/polls/", r"<h1>Hello, world. Edited view.</h1>")
    assert stop(proc) == 0
    # Django does not speak lifespan; devreload answers it for Django's handler.
    assert proc.count(r"Application startup complete") == 2
    assert "Traceback" not in proc.output


# --------------------------------------------------------------------------- FastAPI


def test_fastapi_app_follows_code_edits_with_its_lifespan(spawn: Spawn, project: Path) -> None:
    copy_project("fastapi_app", project)
    proc = devreload_serve(spawn, "main:app", "--reload", "--port", "0")
    url = proc.wait_for(SERVING_RE, timeout=20)[1]
    wait_body(f"{url}/", r'^\{"message":"Hello World","started_by":"lifespan"\}$')
    edit(project / "main.py", '"Hello World"', '"Edited"')
    wait_body(f"{url}/", r'^\{"message":"Edited","started_by":"lifespan"\}$')
    status, _, body = ask(f"{url}/items/x", accept="application/json")
    assert status == 422 and "int_parsing" in body  # FastAPI's own validation, untouched
    assert stop(proc) == 0
    assert proc.count(r"Application startup complete") == 2
    assert proc.count(r"Application shutdown complete") == 2


# --------------------------------------------------------------------------- Pyramid


def test_pyramid_starter_follows_templates_and_code(spawn: Spawn, project: Path) -> None:
    copy_project("pyramid_starter", project)
    ini = project / "development.ini"
    ini.write_text(ini.read_text().replace("listen = localhost:6543", "listen = localhost:0"))
    proc = devreload_serve(spawn, "development.ini", "--reload")
    url = proc.wait_for(SERVING_RE, timeout=20)[1]
    page = wait_body(f"{url}/", r'Welcome to <span class="font-normal">myproject</span>')
    assert "data-devreload" in page
    status, _, _ = ask(f"{url}/static/theme.css", accept="text/css")
    assert status == 200
    edit(project / "myproject/templates/mytemplate.jinja2", "Starter project", "Edited template")
    wait_body(f"{url}/", r'<span class="smaller">Edited template</span>')
    views = project / "myproject/views/default.py"
    edit(views, "{'project': 'myproject'}", "{'project': 'edited code'}")
    wait_body(f"{url}/", r'Welcome to <span class="font-normal">edited code</span>')
    # Without pyramid_debugtoolbar an exception reaches the server: devreload shows it.
    edit(views, "return {'project': 'edited code'}", "return {'project': 1 / 0}")
    _, headers, text = answer_with(f"{url}/", 500, accept="text/plain")
    assert headers["x-devreload-error"] == "request"
    assert "myproject/views/default.py" in text and "ZeroDivisionError" in text
    assert stop(proc) == 0
