"""``python -m hardmine`` runs the command line."""

import sys

from hardmine.cli import main

sys.exit(main())
