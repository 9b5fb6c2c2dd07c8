"""An app holding files open at reload time, as apps do: a gzip stream, a zip archive, a
named temporary file and a SQLite database in WAL mode."""

import gzip
import os
import sqlite3
import tempfile
import zipfile

VERSION = "one"
PID = os.getpid()

log = gzip.open(f"log-{PID}.gz", "wt")  # noqa: SIM115 - open at reload time, on purpose
log.write(f"worker {PID}\n")
archive = zipfile.ZipFile(f"archive-{PID}.zip", "w")
archive.writestr("hello.txt", f"from {PID}")
scratch = tempfile.NamedTemporaryFile(dir=".", prefix=f"scratch-{PID}-")  # noqa: SIM115
scratch.write(b"scratch")
db = sqlite3.connect(f"db-{PID}.sqlite", isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE IF NOT EXISTS t (x)")
db.execute("INSERT INTO t VALUES (1)")


def app(environ, start_response):  # type: ignore[no-untyped-def]
    body = f"{VERSION} {PID}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def make_app(global_config, **settings):  # type: ignore[no-untyped-def]
    return app
