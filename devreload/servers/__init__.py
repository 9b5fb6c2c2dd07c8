"""Runs in the worker: the choice of server, and one module per server (waitress,
uvicorn) with all that knows its internals."""
