"""``python -m devreload`` is the ``devreload`` command."""

import sys

from devreload.monitor.ahead import start_ahead

start_ahead(sys.argv[1:])  # before the monitor's own imports, which it overlaps

from devreload.cli import main  # noqa: E402

sys.exit(main())
