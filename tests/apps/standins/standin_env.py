"""Reads an environment variable when imported (as many libraries read their config)."""

import os

MODE = os.environ.get("STANDIN_MODE", "unset")
