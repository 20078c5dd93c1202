"""``python -m hardmine`` runs the command line (Ctrl-C, even during the start-up imports, exits 130 in one line)."""

from hardmine.app._entry import run

run()
