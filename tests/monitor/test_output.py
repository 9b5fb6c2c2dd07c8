"""A stack's output: each line under its process's name, aligned, coloured only for a
terminal that wants colours."""

from __future__ import annotations

import io

from devreload.monitor.output import Prefixes, wants_colour


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_are_aligned_under_their_names() -> None:
    prefixes = Prefixes(["web", "worker", "css"], colour=False)
    assert prefixes.line("web", "GET / 200") == "web       | GET / 200"
    assert prefixes.line("worker", "job done") == "worker    | job done"
    assert prefixes.own("web", "app.py changed; restarted in 21 ms") == (
        "devreload | web: app.py changed; restarted in 21 ms")


def test_each_process_has_a_colour_of_its_own() -> None:
    prefixes = Prefixes(["web", "worker"], colour=True)
    assert prefixes.line("web", "x") == "\033[36mweb       | \033[0mx"
    assert prefixes.line("worker", "x") == "\033[33mworker    | \033[0mx"
    assert prefixes.own("web", "x").startswith("\033[1mdevreload | \033[0m")


def test_colours_only_for_a_terminal_that_wants_them() -> None:
    assert wants_colour(Terminal(), {"TERM": "xterm"})
    assert not wants_colour(io.StringIO(), {"TERM": "xterm"}), "a pipe or a file: plain"
    assert not wants_colour(Terminal(), {"NO_COLOR": "1"})
    assert wants_colour(Terminal(), {"NO_COLOR": ""}), "NO_COLOR set but empty: no effect"
    assert not wants_colour(Terminal(), {"TERM": "dumb"})
