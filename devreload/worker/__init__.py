"""Runs in the worker (and in the template it is forked from): the proxy to the monitor,
the worker's life, the template, keep-alive hand-over, and what the worker reports about
itself (imports, preloadable libraries, files read, tracebacks)."""
