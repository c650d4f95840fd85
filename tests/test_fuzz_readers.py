"""Hypothesis fuzzing of every reader of untrusted input: source specs, architecture objects,
Graph IR JSON, CSV imports into a real store, ONNX bytes and protos (strategies in
fuzz_strategies.py). Reading fails only with a LennaError, whatever the input.

LENNA_FUZZ_EXAMPLES sets the examples per reader (150 by default, the whole file in well
under a minute); bench/fuzz.py runs the same properties with 10,000. Under CI the examples
are derandomized, so a run is reproducible.
"""

from __future__ import annotations

import os

import pytest
from fuzz_strategies import READERS, FuzzInputs, read_only_lenna_errors
from hypothesis import HealthCheck, given, settings

from lenna_core.errors import LennaError
from lenna_onnx_file.importer import load_onnx_graph

EXAMPLES = int(os.environ.get("LENNA_FUZZ_EXAMPLES", "150"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The real inputs the strategies mutate, made once (a few seconds), each checked to be
    read as it is: the fuzzing starts from valid input (torchvision's seed, an unknown model,
    excepted)."""
    made = FuzzInputs(tmp_path_factory.mktemp("fuzz"))
    for name, spec in made.specs:
        if name == "torchvision":
            with pytest.raises(LennaError, match="unknown torchvision model 'resnet_nope'"):
                made.sources[name].from_spec(spec)
        else:
            assert made.sources[name].from_spec(spec).source == name
    assert [load_onnx_graph(path).outputs for path in made.onnx_paths] == [
        graph.outputs for graph in made.graphs]
    return made


@pytest.mark.parametrize("make", READERS, ids=lambda make: make.__name__.removesuffix("_reader"))
def test_reader_fails_only_with_lenna_errors(make, inputs):
    reader = make(inputs)

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=bool(os.environ.get("CI")),
              database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(example=reader.examples)
    def reads_or_refuses(example):
        read_only_lenna_errors(reader, example)

    reads_or_refuses()
