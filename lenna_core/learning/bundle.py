"""What a predictor bundle is on disk: a manifest of a known shape, and exactly the regular
files that manifest lists, each with its size and sha256.

The manifest's ``checksum`` (sha256 of its body) catches accidental damage and edits of the
manifest or of a listed file; anyone can recompute it, so only the optional ``signature``,
an HMAC-SHA256 of the same body with the secret in ``LENNA_PREDICTOR_KEY``, proves that a
bundle was saved by someone holding the key. Loading copies the verified bytes into a private
directory, so what an estimator reads is exactly what was checked, whatever changes in the
bundle afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import attrs

from lenna_core.errors import PredictorError

FORMAT = "lenna-predictor/2"
LEGACY_FORMAT = "lenna-predictor/1"
"""Bundles saved before files had recorded sizes; they still load (sizes are not checked)."""
MANIFEST = "predictor.json"
KEY_VARIABLE = "LENNA_PREDICTOR_KEY"
SIGNATURE_ALGORITHM = "hmac-sha256"
MAX_MANIFEST_BYTES = 16 * 2**20
CHUNK_BYTES = 2**20
REQUIRED = ("estimator", "featurizers", "feature_names", "workload", "files", "checksum")
WORKLOAD_TYPES = {"batch_size": int, "mode": str, "optimizer": (str, type(None)), "dtype": str}


@attrs.frozen
class ListedFile:
    """A file the manifest lists: its digest and, from format 2 on, its size in bytes."""

    sha256: str
    size: int | None


def signing_key() -> bytes | None:
    """The secret in ``LENNA_PREDICTOR_KEY``, or None when it is not set."""
    key = os.environ.get(KEY_VARIABLE)
    if key is None:
        return None
    if not key:
        raise PredictorError(f"{KEY_VARIABLE} is set but empty; set it to a secret string or "
                             "unset it")
    return key.encode()


def _body(manifest: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k not in ("checksum", "signature")}
    return json.dumps(body, sort_keys=True).encode()


def seal(manifest: dict[str, Any], key: bytes | None) -> None:
    """Add the checksum, and the signature when there is a key; TypeError if a value is not
    JSON."""
    body = _body(manifest)
    manifest["checksum"] = hashlib.sha256(body).hexdigest()
    if key is not None:
        manifest["signature"] = {"algorithm": SIGNATURE_ALGORITHM,
                                 "value": hmac.new(key, body, hashlib.sha256).hexdigest()}


def check_origin(manifest: Mapping[str, Any], path: Path) -> None:
    """The checksum matches the body; with a key set, the signature too; a signed bundle
    needs the key."""
    body = _body(manifest)
    if manifest["checksum"] != hashlib.sha256(body).hexdigest():
        raise PredictorError(f"{path} has been modified since it was saved (checksum mismatch); "
                             "refit the predictor")
    key = signing_key()
    signature = manifest.get("signature")
    if key is None:
        if signature is not None:
            raise PredictorError(f"{path} is signed; set {KEY_VARIABLE} to the key it was "
                                 "signed with to load it")
        return
    if signature is None:
        raise PredictorError(f"{path} is not signed, and {KEY_VARIABLE} is set, so only "
                             "bundles signed with that key load; refit with the key set, or "
                             f"unset {KEY_VARIABLE}")
    expected = hmac.new(key, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature["value"], expected):
        raise PredictorError(f"{path} was not signed with the key in {KEY_VARIABLE} "
                             "(signature mismatch)")


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest at ``path`` if it is a regular file of a sane size holding a JSON object
    of the expected shape; every other case is one PredictorError line."""
    try:
        info = path.lstat()
    except OSError as exc:
        raise PredictorError(f"cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise PredictorError(f"{path} is not a regular file; a bundle holds only regular files")
    if info.st_size > MAX_MANIFEST_BYTES:
        raise PredictorError(f"{path} is not a valid predictor manifest: {info.st_size} bytes, "
                             f"more than the {MAX_MANIFEST_BYTES} a manifest may have")
    try:
        with path.open("rb") as handle:
            manifest = json.loads(handle.read(MAX_MANIFEST_BYTES + 1).decode("utf-8"))
    except OSError as exc:
        raise PredictorError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise PredictorError(f"{path} is not a valid predictor manifest: not UTF-8") from None
    except ValueError as exc:
        raise PredictorError(f"{path} is not a valid predictor manifest: {exc}") from None
    except RecursionError:
        raise PredictorError(f"{path} is not a valid predictor manifest: nested too "
                             "deeply") from None
    problem = _shape_problem(manifest)
    if problem:
        raise PredictorError(f"{path} is not a valid predictor manifest: {problem}")
    return manifest


def _shape_problem(manifest: Any) -> str | None:
    """What is wrong with the manifest's shape, or None: every key the loader reads has the
    type it expects."""
    if not isinstance(manifest, dict):
        return f"a JSON object is expected, not {type(manifest).__name__}"
    if manifest.get("format") not in (FORMAT, LEGACY_FORMAT):
        return f"format {manifest.get('format')!r}; expected {FORMAT}"
    missing = [key for key in REQUIRED if key not in manifest]
    if missing:
        return f"no {', '.join(missing)}"
    estimator = manifest["estimator"]
    if not (isinstance(estimator, dict) and isinstance(estimator.get("name"), str)
            and isinstance(estimator.get("params"), dict)):
        return "estimator must be an object with a name and params"
    featurizers = manifest["featurizers"]
    if not isinstance(featurizers, list) or not all(
            isinstance(f, dict) and isinstance(f.get("name"), str)
            and isinstance(f.get("version"), (str, int)) and not isinstance(f["version"], bool)
            for f in featurizers):
        return "featurizers must be a list of objects with a name and a version"
    names = manifest["feature_names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return "feature_names must be a list of strings"
    workload = manifest["workload"]
    if not isinstance(workload, dict) or set(workload) - set(WORKLOAD_TYPES) or any(
            not isinstance(v, WORKLOAD_TYPES[k]) or isinstance(v, bool)
            for k, v in workload.items()):
        return f"workload must be an object with some of {', '.join(WORKLOAD_TYPES)}"
    if not isinstance(manifest.get("target", {}), dict):
        return "target must be an object"
    if not isinstance(manifest["checksum"], str):
        return "checksum must be a string"
    signature = manifest.get("signature")
    if signature is not None and not (
            isinstance(signature, dict) and signature.get("algorithm") == SIGNATURE_ALGORITHM
            and isinstance(signature.get("value"), str)):
        return f"signature must be an object with algorithm {SIGNATURE_ALGORITHM} and a value"
    return _files_problem(manifest["files"], legacy=manifest["format"] == LEGACY_FORMAT)


def _files_problem(files: Any, legacy: bool) -> str | None:
    if not isinstance(files, dict):
        return "files must be an object"
    for name, entry in files.items():
        parts = PurePosixPath(name).parts
        if (not name or name.startswith("/") or "\\" in name or "\0" in name
                or any(p in ("", ".", "..") for p in name.split("/")) or name == MANIFEST):
            return f"file name {name!r} is not a plain relative path inside the bundle"
        if legacy:
            if not isinstance(entry, str):
                return f"files.{name} must be a sha256 string"
        elif not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
                  and isinstance(entry.get("size"), int) and not isinstance(entry["size"], bool)
                  and entry["size"] >= 0):
            return f"files.{name} must be an object with a sha256 and a size"
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in files:
                return f"{'/'.join(parts[:depth])} is listed as a file and as a directory"
    return None


def listed_files(manifest: Mapping[str, Any]) -> dict[str, ListedFile]:
    """The files a checked manifest lists, by relative path."""
    if manifest["format"] == LEGACY_FORMAT:
        return {name: ListedFile(digest, None) for name, digest in manifest["files"].items()}
    return {name: ListedFile(entry["sha256"], entry["size"])
            for name, entry in manifest["files"].items()}


def _entries(root: Path, prefix: str = "") -> Iterator[tuple[str, os.stat_result]]:
    """Every entry under ``root`` as (relative posix path, lstat), without following
    symlinks; directories before what they hold."""
    with os.scandir(root) as scan:
        entries = sorted(scan, key=lambda e: e.name)
    for entry in entries:
        info = entry.stat(follow_symlinks=False)
        yield prefix + entry.name, info
        if stat.S_ISDIR(info.st_mode):
            yield from _entries(Path(entry.path), f"{prefix}{entry.name}/")


def check_contents(bundle: Path, names: Iterable[str]) -> None:
    """The bundle holds exactly ``names`` and its manifest as regular files, and only the
    directories their paths imply: no other file, no symlink, nothing special."""
    expected = set(names)
    directories = {"/".join(PurePosixPath(n).parts[:d]) for n in expected
                   for d in range(1, len(PurePosixPath(n).parts))}
    found = set()
    for relative, info in _entries(bundle):
        if stat.S_ISLNK(info.st_mode):
            raise PredictorError(f"predictor bundle {bundle} holds a symlink, {relative}; a "
                                 "bundle holds only the regular files its manifest lists")
        if stat.S_ISDIR(info.st_mode):
            if relative not in directories:
                raise PredictorError(f"predictor bundle {bundle} holds {relative}/, a "
                                     "directory its manifest does not list")
        elif not stat.S_ISREG(info.st_mode):
            raise PredictorError(f"predictor bundle {bundle} holds {relative}, which is not a "
                                 "regular file")
        elif relative in expected:
            found.add(relative)
        elif relative != MANIFEST:
            raise PredictorError(f"predictor bundle {bundle} holds {relative}, a file its "
                                 "manifest does not list")
    missing = sorted(expected - found)
    if missing:
        raise PredictorError(f"predictor file {missing[0]} is missing from {bundle}")


def describe(root: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every regular file under ``root`` but the manifest, each flushed to
    disk; PredictorError for a symlink or anything special, as loading would refuse it."""
    files = {}
    for relative, info in _entries(root):
        if stat.S_ISREG(info.st_mode) and relative != MANIFEST:
            with (root / relative).open("rb") as handle:
                files[relative] = {"sha256": _digest(handle, info.st_size + 1),
                                   "size": info.st_size}
                os.fsync(handle.fileno())
    check_contents(root, list(files))
    return files


def _digest(handle: Any, limit: int, copy: Any = None) -> str:
    """sha256 of at most ``limit`` bytes read in chunks, written to ``copy`` as read."""
    digest = hashlib.sha256()
    remaining = limit
    while remaining > 0:
        chunk = handle.read(min(CHUNK_BYTES, remaining))
        if not chunk:
            break
        digest.update(chunk)
        remaining -= len(chunk)
        if copy is not None:
            copy.write(chunk)
    return digest.hexdigest()


def copy_verified(bundle: Path, files: Mapping[str, ListedFile], into: Path) -> None:
    """Copy each listed file into ``into`` as its sha256 is computed, refusing a file whose
    size or digest is not the manifest's; a file is never read past its recorded size."""
    for name, listed in sorted(files.items()):
        source = bundle / name
        try:
            descriptor = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            raise PredictorError(f"cannot read predictor file {source}: {exc.strerror}"
                                 ) from None
        with os.fdopen(descriptor, "rb") as handle:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode):
                raise PredictorError(f"predictor file {source} is not a regular file")
            if listed.size is not None and info.st_size != listed.size:
                raise PredictorError(
                    f"predictor file {source} is {info.st_size} bytes, but the manifest "
                    f"records {listed.size} (modified since it was saved); refit the predictor")
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            limit = info.st_size + 1 if listed.size is None else listed.size + 1
            with target.open("wb") as copy:
                digest = _digest(handle, limit, copy)
        if digest != listed.sha256:
            raise PredictorError(f"predictor file {source} has been modified since it was "
                                 "saved (checksum mismatch); refit the predictor")
