"""``python -m trio_runner``: see ``trio_runner.cli``."""

from __future__ import annotations

import sys

from trio_runner.cli import main

sys.exit(main())
