"""Entry point of `python -m policy_check`."""

import sys

from policy_check.check import main

sys.exit(main())
