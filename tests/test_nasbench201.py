"""NAS-Bench-201 cells: parsing, enumeration, the macro network and the edge encoding."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA, run_lenna

from lenna_core.errors import LennaError
from lenna_core.ir import init_weights
from lenna_core.records import Architecture, Workload
from lenna_layer_stats.stats import count_params
from lenna_nasbench201.cells import (
    OPS,
    all_arch_strings,
    arch_string,
    canonical_arch,
    parse_arch,
)
from lenna_nasbench201.encoding import Nb201EncodingFeaturizer
from lenna_nasbench201.source import NasBench201Source

LARGEST = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
           "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
ARCH_CSV = SHARED_DATA / "nasbench201" / "arch_index_to_str.csv"
HW_NAS_BENCH_360 = SHARED_DATA / "hw-nas-bench-360" / "dataset.parquet"


def test_parse_and_round_trip():
    text = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
            "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    cell = parse_arch(text)
    assert cell == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect",
                    "nor_conv_3x3", "skip_connect")
    assert arch_string(cell) == text


def test_all_cells_are_enumerated_once():
    strings = all_arch_strings()
    assert len(strings) == len(set(strings)) == 15_625
    assert {parse_arch(s) for s in strings} == set(itertools.product(OPS, repeat=6))
    assert all(arch_string(parse_arch(s)) == s for s in strings)


@pytest.mark.skipif(not ARCH_CSV.exists(), reason="shared NAS-Bench-201 index not present")
def test_the_published_index_is_exactly_our_space():
    published = pd.read_csv(ARCH_CSV)["arch_str"]
    assert set(published) == set(all_arch_strings())


def test_largest_network_matches_the_published_parameter_count():
    arch = NasBench201Source().from_spec({"arch": LARGEST})
    assert count_params(arch.graph) == 1_531_546  # NAS-Bench-201, CIFAR-10, 10 classes
    assert arch.graph.shapes[arch.graph.outputs[0]] == (10,)


@pytest.mark.parametrize(("options", "shape"), [
    ({"input_size": 32, "num_classes": 100}, (3, 32, 32)),
    ({"input_channels": 1, "input_size": "52x16"}, (1, 52, 16)),
    ({"input_channels": 1, "input_size": 88}, (1, 88, 88)),
])
def test_the_hw_nas_bench_360_tasks_build_and_run(options, shape):
    onnx = pytest.importorskip("lenna_onnxruntime.convert")
    source = NasBench201Source(**options)
    arch = source.sample(np.random.default_rng(1))
    assert arch.graph.input_shape == shape
    x = np.random.default_rng(0).standard_normal((1, *shape), dtype=np.float32)
    (out,) = onnx.run_onnx(arch.graph, init_weights(arch.graph), x)
    assert out.shape == (1, options.get("num_classes", 10))


def test_sampling_is_uniform_and_cells_without_a_path_still_build():
    rng = np.random.default_rng(0)
    source = NasBench201Source(num_classes=7)
    archs = [source.sample(rng) for _ in range(200)]
    assert all(a.graph.shapes[a.graph.outputs[0]] == (7,) for a in archs)
    counts = np.array([[parse_arch(a.spec["arch"])[i] == op for op in OPS]
                       for a in archs for i in range(6)]).sum(axis=0)
    assert counts.min() > 200 and counts.max() < 280  # 240 each if uniform
    dead = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    assert source.from_spec({"arch": dead}).graph.shapes  # valid, outputs zeros


def test_input_fields_in_the_spec_override_the_options():
    arch = NasBench201Source().from_spec({"arch": LARGEST, "input_size": "52x16",
                                          "input_channels": 1, "num_classes": 100})
    assert arch.graph.input_shape == (1, 52, 16)
    assert arch.graph.shapes[arch.graph.outputs[0]] == (100,)
    ninapro = NasBench201Source(input_size="52x16", input_channels=1, num_classes=100)
    rebuilt = ninapro.from_spec({"arch": LARGEST})
    assert rebuilt.id == arch.id and rebuilt.spec == arch.spec
    assert NasBench201Source().from_spec(json.loads(json.dumps(arch.spec))).id == arch.id
    assert NasBench201Source().from_spec({"arch": LARGEST}).spec == {
        "arch": LARGEST, "input_size": 32, "input_channels": 3, "num_classes": 10}


def test_isomorphic_cells_share_a_canonical_arch():
    classes = {canonical_arch(s) for s in all_arch_strings()}
    assert len(classes) == 6_466  # NAS-Bench-201's count of unique cells
    assert all(canonical_arch(c) == c for c in classes)
    # edges into nodes 1 and 2 cannot reach the output: only skip_connect~0 counts
    dead_ends = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|"
    assert canonical_arch(dead_ends) == "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    # node 1 is zero, so the ops it feeds count as none
    zero_fed = ("|none~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+"
                "|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|")
    assert canonical_arch(zero_fed) == (
        "|none~0|+|avg_pool_3x3~0|none~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|")
    # sums flatten: a pool into node 2 passed on by skip_connect is a pool into node 3
    assert canonical_arch("|none~0|+|avg_pool_3x3~0|none~1|+|none~0|none~1|skip_connect~2|") == (
        "|none~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|skip_connect~2|")
    # the sum commutes: with node 1 = node 0, conv on either edge into node 2 is the same cell
    assert canonical_arch("|skip_connect~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|skip_connect~2|"
                          ) == canonical_arch(
        "|skip_connect~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|")
    assert canonical_arch(LARGEST) == LARGEST


@pytest.mark.skipif(not (ARCH_CSV.exists() and HW_NAS_BENCH_360.exists()),
                    reason="shared NAS-Bench-201 index or HW-NAS-Bench-360 data not present")
def test_canonical_arch_groups_cells_as_hw_nas_bench_360_does():
    index = pd.read_csv(ARCH_CSV)
    reps = pd.read_parquet(HW_NAS_BENCH_360, columns=["arch_idx", "rep_arch_idx"])
    table = index.merge(reps.drop_duplicates(), on="arch_idx")
    table["canonical"] = table["arch_str"].map(canonical_arch)
    assert (table.groupby("canonical")["rep_arch_idx"].nunique() == 1).all()
    assert (table.groupby("rep_arch_idx")["canonical"].nunique() == 1).all()


@pytest.mark.parametrize(("text", "fragment"), [
    ("|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_9x9'"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "token 'none~1' must read 'none~0'"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2 edge(s)"),
    ("|none~0|+|none~0|none~1|", "needs 3 groups"),
])
def test_bad_arch_strings_name_the_token(text, fragment):
    with pytest.raises(LennaError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        NasBench201Source().from_spec({"arch": text})


def test_bad_options_and_specs():
    with pytest.raises(LennaError, match="multiples of 4"):
        NasBench201Source(input_size=30)
    with pytest.raises(LennaError, match="unknown field"):
        NasBench201Source().from_spec({"arch": LARGEST, "cells": 5})
    with pytest.raises(LennaError, match="spec field 'input_size' '50x16'"):
        NasBench201Source().from_spec({"arch": LARGEST, "input_size": "50x16"})
    with pytest.raises(LennaError, match="spec field 'num_classes' must be a positive int"):
        NasBench201Source().from_spec({"arch": LARGEST, "num_classes": 0})
    with pytest.raises(LennaError, match="option input_channels must be a positive int"):
        NasBench201Source(input_channels="3")


def test_encoding_is_one_hot_per_edge():
    arch = NasBench201Source().from_spec({"arch": LARGEST})
    values = Nb201EncodingFeaturizer().featurize(Workload(arch))
    assert len(values) == 30 and sum(values.values()) == 6
    assert all(values[f"edge{i}_nor_conv_3x3"] == 1 for i in range(6))
    with pytest.raises(LennaError, match="needs nasbench201 architectures"):
        Nb201EncodingFeaturizer().featurize(Workload(Architecture("x", {}, arch.graph)))


def test_features_from_the_cli():
    result = run_lenna("features", "--source", "nasbench201", "--arch",
                       json.dumps({"arch": LARGEST}), "--features", "nb201-encoding", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["edge5_nor_conv_3x3"] == 1
