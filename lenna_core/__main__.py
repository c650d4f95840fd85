"""``python -m lenna_core`` runs the ``lenna`` command."""

if __name__ == "__main__":  # worker processes re-import this module; they must not run the CLI
    from lenna_core.cli import main

    main()
