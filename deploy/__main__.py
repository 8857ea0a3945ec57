"""Entry point of `python -m deploy`."""

from __future__ import annotations

import sys

from deploy.cli import main

sys.exit(main())
