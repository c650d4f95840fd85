"""``python -m lenna_core`` runs the ``lenna`` command."""

from lenna_core.cli import main

main()
