"""``python -m hardmine`` runs the command line (Ctrl-C, even during the start-up imports, exits 130 in one line)."""

import sys

try:
    from hardmine.cli import main
except KeyboardInterrupt:  # pragma: no cover  (a few milliseconds: hardmine.cli imports argparse only)
    print("hardmine: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
