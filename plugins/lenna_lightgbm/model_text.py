"""LightGBM text models, read without risk to the process.

LightGBM's C++ parser trusts its input: a truncated or edited model file can kill the process
(SIGSEGV, or SIGABRT from an exception in a parser thread), while parsing or later when
predicting. So a model is read in three steps: its structure is checked in Python (every
tree's arrays have the lengths and indices ``predict`` relies on), then the library parses it,
reads its parameters and predicts one row in a short-lived child process (``parse_child``),
and only then is it parsed in this process, from the same bytes.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from lenna_core.api import PredictorError, first_line

CHILD_SCRIPT = Path(__file__).with_name("parse_child.py")
CHILD_TIMEOUT = 120.0
"""Seconds the child may take to parse a model (a few hundred trees take milliseconds)."""
MAX_LEAVES = 2**17
HEADER_INTEGERS = ("num_class", "num_tree_per_iteration", "label_index", "max_feature_idx")
INTERNAL_ARRAYS = {"split_feature": int, "threshold": float, "decision_type": int,
                   "left_child": int, "right_child": int, "split_gain": float,
                   "internal_value": float, "internal_weight": float, "internal_count": int}
LEAF_ARRAYS = {"leaf_value": float, "leaf_weight": float, "leaf_count": int}
OPTIONAL_ARRAYS = {"split_gain", "internal_value", "internal_weight", "internal_count",
                   "leaf_weight", "leaf_count"}
CATEGORICAL_BIT = 1
PARAMETER_LINE = re.compile(r"\[[A-Za-z0-9_]+: [^\n\[\]]*\]")


def read_booster(path: Path) -> Any:
    """The ``lightgbm.Booster`` in the text model at ``path``; PredictorError names the file
    and the problem when it is malformed, whatever the parser would have done with it."""
    import lightgbm

    def malformed(reason: str) -> PredictorError:
        return PredictorError(f"model file {path.name} in bundle {path.parent} is malformed: "
                              f"{reason}")

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PredictorError(f"estimator lightgbm: cannot read {path}: {exc.strerror}"
                             ) from None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise malformed("not a LightGBM text model (not ASCII text)") from None
    problem = structure_problem(text)
    if problem:
        raise malformed(problem)
    problem = parse_in_child(data, lightgbm.basic._LIB._name)  # the library this process uses
    if problem:
        raise malformed(problem)
    try:
        return lightgbm.Booster(model_str=text)
    except (lightgbm.basic.LightGBMError, ValueError) as exc:  # ValueError: the pandas line
        raise malformed(first_line(exc)) from None


def parse_in_child(data: bytes, library: str) -> str | None:
    """Parse, read the parameters of and predict with ``data`` in a fresh interpreter that
    loads only the library; what went wrong, or None."""
    try:
        result = subprocess.run([sys.executable, "-I", "-S", str(CHILD_SCRIPT), library],
                                input=data, capture_output=True, timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"the parser did not finish within {CHILD_TIMEOUT:.0f} s"
    if result.returncode < 0:
        return f"the parser crashed ({signal.Signals(-result.returncode).name})"
    if result.returncode != 0:
        said = result.stdout.decode("utf-8", "replace").strip()
        return said.splitlines()[-1] if said else f"the parser exited with {result.returncode}"
    return None


def structure_problem(text: str) -> str | None:
    """What makes ``text`` unsafe or impossible for LightGBM to read, or None.

    Checked: the header's counts, ``tree_sizes`` against the trees' byte lengths, every tree's
    arrays (lengths, types, feature and child indices forming one tree), numerical splits
    only, and the parameter lines.
    """
    if not text.startswith("tree\n"):
        return "not a LightGBM text model (it does not start with 'tree')"
    head, found, rest = text.partition("\nTree=")
    if not found:
        return "it holds no tree"
    header = _key_values(head.splitlines()[1:])
    if isinstance(header, str):
        return f"header: {header}"
    try:
        counts = {key: int(header[key]) for key in HEADER_INTEGERS}
        sizes = [int(size) for size in header["tree_sizes"].split()]
    except KeyError as exc:
        return f"header: no {exc.args[0]}"
    except ValueError:
        return f"header: one of {', '.join(HEADER_INTEGERS)}, tree_sizes is not an integer"
    if counts["num_class"] != 1 or counts["num_tree_per_iteration"] != 1:
        return "header: only regression models (one class, one tree per iteration) are read"
    n_features = counts["max_feature_idx"] + 1
    if not 1 <= n_features <= 2**20 or len(header.get("feature_names", "").split()) != n_features:
        return "header: max_feature_idx and feature_names disagree"
    body = ("Tree=" + rest).encode("ascii")
    offset = 0
    for index, size in enumerate(sizes):
        block = body[offset:offset + size] if size > 0 else b""
        if not block.startswith(f"Tree={index}\n".encode()) or not block.endswith(b"\n\n"):
            return f"tree_sizes does not match tree {index}"
        problem = _tree_problem(block.decode("ascii").splitlines()[1:], n_features)
        if problem:
            return f"tree {index}: {problem}"
        offset += size
    if not sizes or not body[offset:].startswith(b"end of trees\n"):
        return "tree_sizes does not match the trees ('end of trees' expected after them)"
    return _tail_problem(body[offset:].decode("ascii"))


def _key_values(lines: list[str]) -> dict[str, str] | str:
    values = {}
    for line in lines:
        if not line:
            continue
        key, equals, value = line.partition("=")
        if not equals or not key:
            return f"line {line[:40]!r} is not key=value"
        values[key] = value
    return values


def _tree_problem(lines: list[str], n_features: int) -> str | None:
    values = _key_values(lines)
    if isinstance(values, str):
        return values
    try:
        leaves = int(values["num_leaves"])
        if int(values.get("num_cat", "0")) != 0 or values.get("is_linear", "0") != "0":
            return "categorical splits and linear trees are not read"
        float(values.get("shrinkage", "1"))
    except KeyError as exc:
        return f"no {exc.args[0]}"
    except ValueError:
        return "num_leaves, num_cat or shrinkage is not a number"
    if not 1 <= leaves <= MAX_LEAVES:
        return f"num_leaves {leaves} is out of range"
    arrays: dict[str, list[Any]] = {}
    for name, kind in (*INTERNAL_ARRAYS.items(), *LEAF_ARRAYS.items()):
        length = leaves if name in LEAF_ARRAYS else leaves - 1
        text = values.get(name)
        if text is None and (name in OPTIONAL_ARRAYS or length == 0):
            continue
        if text is None:
            return f"no {name}"
        try:
            arrays[name] = [kind(item) for item in text.split()]
        except ValueError:
            return f"{name} holds something that is not a number"
        if len(arrays[name]) != length:
            return f"{name} has {len(arrays[name])} values, {length} expected"
    if leaves > 1:
        return _shape_problem(arrays, leaves, n_features)
    return None


def _shape_problem(arrays: dict[str, list[Any]], leaves: int, n_features: int) -> str | None:
    """Split features exist, decisions are numerical, and the children form one tree: every
    internal node but the root and every leaf is the child of exactly one node, and an
    internal child comes after its parent (so there is no cycle)."""
    if any(not 0 <= f < n_features for f in arrays["split_feature"]):
        return "split_feature names a feature the model does not have"
    if any(not 0 <= d < 16 or d & CATEGORICAL_BIT for d in arrays["decision_type"]):
        return "decision_type is not a numerical split"
    seen_nodes, seen_leaves = [False] * (leaves - 1), [False] * leaves
    seen_nodes[0] = True
    for node, children in enumerate(zip(arrays["left_child"], arrays["right_child"],
                                        strict=True)):
        for child in children:
            if child >= 0:
                if not node < child < leaves - 1 or seen_nodes[child]:
                    return f"node {node} has a bad child {child}"
                seen_nodes[child] = True
            else:
                leaf = ~child
                if leaf >= leaves or seen_leaves[leaf]:
                    return f"node {node} has a bad leaf {leaf}"
                seen_leaves[leaf] = True
    if not all(seen_nodes) or not all(seen_leaves):
        return "some nodes or leaves are not in the tree"
    return None


def _tail_problem(tail: str) -> str | None:
    """After the trees: the feature importances, the parameter lines LightGBM parses back,
    and the pandas line."""
    _, found, parameters = tail.partition("\nparameters:\n")
    if not found:
        return "no parameters section"
    parameters, found, _ = parameters.partition("\nend of parameters\n")
    if not found:
        return "the parameters section does not end"
    for line in parameters.splitlines():
        if line and not PARAMETER_LINE.fullmatch(line):
            return f"parameter line {line[:40]!r} is not [name: value]"
    return None
