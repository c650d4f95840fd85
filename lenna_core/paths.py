"""Checks of the paths a user gives, made before any work and creating nothing."""

from __future__ import annotations

import os
from pathlib import Path

from lenna_core.errors import LennaError


def writable_directory(path: Path, option: str = "--out") -> Path:
    """``path`` if it is, or can be made, a directory this process may write in; a LennaError
    naming ``option`` otherwise. Nothing is created: a command that fails later leaves no
    empty directory behind."""
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise LennaError(f"cannot write to {option} {path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise LennaError(f"cannot write to {option} {path}: {existing} is not writable")
    return path
