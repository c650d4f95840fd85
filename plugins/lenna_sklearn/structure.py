"""A loaded scikit-learn model checked before it predicts.

skops rebuilds only trusted types, but it copies a file's arrays into scikit-learn's compiled
trees (``sklearn.tree._tree.Tree``, ``KDTree``) as they are, and their predict code reads
those arrays without bounds checks: an edited node index crashes the process (SIGSEGV). So
the model must be the regressor its estimator builds, behind the expected wrappers, and every
compiled tree in it must be consistent: node indices in range and forming one tree, split
features within the model's features, and its parts agreeing on how many features there are.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

LEAF = -1
"""The child index scikit-learn's trees give a leaf."""


def structure_problem(model: Any, regressor: type, scaled: bool) -> str | None:
    """What is wrong with ``model`` for an estimator whose regressor is ``regressor``
    (behind a StandardScaler when ``scaled``, possibly one per column), or None."""
    from sklearn.multioutput import MultiOutputRegressor
    from sklearn.neighbors import KDTree
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree._tree import Tree

    core = model
    if scaled:
        if not (isinstance(model, Pipeline) and len(model.steps) == 2
                and type(model.steps[0][1]) is StandardScaler):
            return f"it holds {type(model).__name__}, not a StandardScaler and a " \
                   f"{regressor.__name__} in a pipeline"
        core = model.steps[1][1]
    members = core.estimators_ if type(core) is MultiOutputRegressor else [core]
    if not isinstance(members, list) or not members or any(
            type(m) is not regressor for m in members):
        return f"it does not hold a {regressor.__name__}"
    widths = set()
    for part in _parts(model):
        if isinstance(part, Tree):
            problem = _tree_problem(part)
            widths.add(part.n_features)
        elif isinstance(part, KDTree):
            problem = _kd_tree_problem(part)
            widths.add(np.asarray(part.data).shape[1])
        else:
            problem = None
            if hasattr(part, "n_features_in_"):
                widths.add(part.n_features_in_)
        if problem:
            return problem
    if len(widths) != 1:
        return "its parts disagree on the number of features"
    return None


def _parts(root: Any) -> Iterator[Any]:
    """``root`` and every object reachable from it through scikit-learn objects' attributes,
    lists, tuples, dicts and object arrays, each once."""
    from sklearn.base import BaseEstimator

    seen: set[int] = set()
    pending = [root]
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        if isinstance(item, BaseEstimator):
            pending.extend(vars(item).values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, np.ndarray) and item.dtype == object:
            pending.extend(item.flat)


def _tree_problem(tree: Any) -> str | None:
    """A decision tree's nodes: as many as it holds, children after their parent and each
    node but the root the child of exactly one node, split features in range."""
    count = tree.node_count
    if count < 1 or count != tree.capacity:
        return "a decision tree's node count does not match its nodes"
    nodes = tree.__getstate__()["nodes"]
    left, right = nodes["left_child"], nodes["right_child"]
    leaf = left == LEAF
    if np.any(leaf != (right == LEAF)):
        return "a decision tree has a node with a single child"
    internal = np.flatnonzero(~leaf)
    feature = nodes["feature"][internal]
    if np.any(feature < 0) or np.any(feature >= tree.n_features):
        return "a decision tree splits on a feature it does not have"
    children = np.concatenate([left[internal], right[internal]])
    parents = np.concatenate([internal, internal])
    if (np.any(children <= parents) or np.any(children >= count)
            or len(children) != count - 1 or len(np.unique(children)) != len(children)):
        return "a decision tree's child indices do not form a tree"
    return None


def _kd_tree_problem(tree: Any) -> str | None:
    """A KD-tree's arrays: the index a permutation of the data's rows, a complete binary tree
    of ``2**levels - 1`` nodes whose ranges lie in the index and whose last level is leaves,
    and bounds for every node and feature."""
    data, index, nodes, bounds, leaf_size, levels, count = tree.__getstate__()[:7]
    rows, width = data.shape
    if not 1 <= levels <= 64 or count != 2**levels - 1 or nodes.shape != (count,) \
            or leaf_size < 1:
        return "a KD-tree's node count does not match its levels"
    if index.shape != (rows,) or not np.array_equal(np.sort(index), np.arange(rows)):
        return "a KD-tree's index is not a permutation of its data's rows"
    start, end, is_leaf = nodes["idx_start"], nodes["idx_end"], nodes["is_leaf"]
    if np.any(start < 0) or np.any(start > end) or np.any(end > rows):
        return "a KD-tree's node ranges lie outside its data"
    if np.any((is_leaf == 0) & (2 * np.arange(count) + 2 >= count)) or np.any(
            (is_leaf != 0) & (is_leaf != 1)):
        return "a KD-tree has a node whose children are missing"
    if bounds.shape != (2, count, width):
        return "a KD-tree's bounds do not match its nodes"
    return None
