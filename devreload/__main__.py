"""``python -m devreload`` and the ``devreload`` command."""

import sys

from devreload.monitor.ahead import start_ahead


def main() -> int:
    """The command: the worker template starts first, so that its start-up overlaps the
    monitor's own imports (the command line's module imports them)."""
    start_ahead(sys.argv[1:])
    from devreload.cli import main as command

    return command()


if __name__ == "__main__":
    sys.exit(main())
