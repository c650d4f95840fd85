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
from lenna_core.host_limits import host_limit_message

__all__ = ["app", "main"]

COMMAND_MODULES = ("run", "data", "evaluate", "transfer", "search", "report", "architectures",
                   "host", "db")
"""The modules whose commands ``lenna --help`` lists, in this order."""
for _module in COMMAND_MODULES:
    importlib.import_module(f"lenna_core.cli.{_module}")

INTERRUPTED = 130


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _error(message: str) -> None:
    """Print ``message`` as the one ``error:`` line (line breaks inside it become spaces)."""
    print(f"error: {' '.join(message.split())}", file=sys.stderr)


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
        _error(f"{exc.format_message()}{hint}")
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        code = INTERRUPTED
    except LennaError as exc:
        _error(str(exc))
        sys.exit(exc.exit_code)
    except Exception as exc:
        if os.environ.get("LENNA_DEBUG"):
            raise
        limit = host_limit_message(exc)
        if limit is not None:
            _error(limit)
            sys.exit(LennaError.exit_code)
        _error(f"unexpected {type(exc).__name__}: {exc} (set LENNA_DEBUG=1 for a traceback)")
        sys.exit(1)
    if code == INTERRUPTED:
        print("interrupted: everything committed so far is kept (labels and their passes one "
              "by one, an import in chunks of 500 rows); run the same command again to resume",
              file=sys.stderr)
    if isinstance(code, int):
        sys.exit(code)
