"""The ``lenna`` command line: one module per group of commands, all on one typer ``app``.
Heavy modules are imported inside commands, so ``lenna --help`` is fast."""

from __future__ import annotations

import importlib
import os
import signal
import sys

import typer

from lenna_core.cli.app import app
from lenna_core.errors import LennaError

__all__ = ["app", "main"]

COMMAND_MODULES = ("run", "data", "evaluate", "transfer", "architectures", "host")
"""The modules whose commands ``lenna --help`` lists, in this order."""
for _module in COMMAND_MODULES:
    importlib.import_module(f"lenna_core.cli.{_module}")

INTERRUPTED = 130


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Entry point: errors become one line on stderr and a non-zero exit, never a traceback."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # Without standalone mode, typer returns exit codes (130 for an interrupt) and
        # raises everything else to here.
        code = app(prog_name="lenna", standalone_mode=False)
    except typer.TyperException as exc:
        context = getattr(exc, "ctx", None)
        hint = f" (see '{context.command_path} --help')" if context else ""
        print(f"error: {exc.format_message()}{hint}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        code = INTERRUPTED
    except LennaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception as exc:
        if os.environ.get("LENNA_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (set LENNA_DEBUG=1 for a traceback)",
              file=sys.stderr)
        sys.exit(1)
    if code == INTERRUPTED:
        print("interrupted: everything committed so far is kept (labels and their passes one "
              "by one, an import all or nothing); run the same command again to resume",
              file=sys.stderr)
    if isinstance(code, int):
        sys.exit(code)
