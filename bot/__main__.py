"""`python -m bot …` is the same as `appeals-bot …`."""

import sys

from bot.cli import main

sys.exit(main())
