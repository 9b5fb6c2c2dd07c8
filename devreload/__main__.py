"""``python -m devreload`` is the ``devreload`` command."""

import sys

from devreload.cli import main

sys.exit(main())
