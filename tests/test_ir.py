"""The Graph IR: shape inference, validation errors, JSON round trip and content ids."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from lenna_core.errors import GraphError
from lenna_core.ir import OPS, Graph, GraphBuilder, init_weights
from lenna_core.ir.weights import parameter_specs


def small_cnn(width: int = 8, kernel: int = 3) -> Graph:
    b = GraphBuilder()
    x = b.input((3, 32, 32))
    y = b.add_node("conv2d", x, out_channels=width, kernel_size=kernel, padding=kernel // 2)
    y = b.add_node("batchnorm", y)
    y = b.add_node("relu", y)
    z = b.add_node("maxpool", y, kernel_size=3, stride=2, padding=1)
    w = b.add_node("conv2d", z, out_channels=width, kernel_size=1)
    y = b.add_node("add", z, w)
    y = b.add_node("concat", y, z)
    y = b.add_node("global_avgpool", y)
    y = b.add_node("flatten", y)
    return b.build(b.add_node("linear", y, out_features=10))


def test_shapes_are_inferred():
    g = small_cnn()
    assert g.shapes["conv2d_0"] == (8, 32, 32)
    assert g.shapes["maxpool_0"] == (8, 16, 16)
    assert g.shapes["concat_0"] == (16, 16, 16)
    assert g.shapes["global_avgpool_0"] == (16, 1, 1)
    assert g.shapes["linear_0"] == (10,)
    assert g.input_shape == (3, 32, 32)


@pytest.mark.parametrize(
    ("h", "kernel", "stride", "padding", "dilation", "expected"),
    [(32, 3, 1, 1, 1, 32), (32, 3, 2, 1, 1, 16), (7, 7, 1, 0, 1, 1), (224, 7, 2, 3, 1, 112),
     (20, 3, 1, 2, 2, 20), (5, 2, 2, 0, 1, 2)],
)
def test_conv_output_size(h, kernel, stride, padding, dilation, expected):
    b = GraphBuilder()
    y = b.add_node("conv2d", b.input((4, h, h)), out_channels=4, kernel_size=kernel,
                   stride=stride, padding=padding, dilation=dilation)
    assert b.shape(y) == (4, expected, expected)


def test_ceil_mode_pool_matches_frameworks():
    b = GraphBuilder()
    y = b.add_node("maxpool", b.input((3, 5, 5)), kernel_size=2, stride=2, padding=1,
                   ceil_mode=True)
    assert b.shape(y) == (3, 3, 3)


def test_lstm_and_zero_shapes():
    b = GraphBuilder()
    y = b.add_node("lstm", b.input((12, 20)), hidden_size=32, num_layers=2)
    assert b.shape(y) == (12, 32)
    b = GraphBuilder()
    y = b.add_node("zero", b.input((6, 9, 9)), stride=2)
    assert b.shape(y) == (6, 5, 5)


def test_bidirectional_lstm_shapes_and_arrays():
    b = GraphBuilder()
    y = b.add_node("lstm", b.input((12, 20)), hidden_size=32, num_layers=2, bidirectional=True)
    graph = b.build(y)
    assert graph.shapes[y] == (12, 64)
    params = parameter_specs(graph)[y]
    assert params["w_ih_0_reverse"].shape == params["w_ih_0"].shape == (128, 20)
    assert params["w_ih_1_reverse"].shape == params["w_ih_1"].shape == (128, 64)
    assert sorted(init_weights(graph)[y]) == sorted(params) and len(params) == 16


def test_a_forward_lstm_omits_bidirectional_from_its_id_and_json():
    def lstm(**attrs):
        b = GraphBuilder()
        return b.build(b.add_node("lstm", b.input((12, 20)), hidden_size=32, **attrs))

    forward = lstm()
    assert lstm(bidirectional=False).id == forward.id
    assert lstm(bidirectional=False).to_json() == forward.to_json()
    assert "bidirectional" not in forward.to_json()
    both = lstm(bidirectional=True)
    assert both.id != forward.id and Graph.from_json(both.to_json()).id == both.id
    with pytest.raises(GraphError, match="'bidirectional' must be true or false"):
        lstm(bidirectional=1)


def test_mul_broadcasts_axes_of_size_one():
    b = GraphBuilder()
    x = b.input((8, 5, 6))
    scale = b.add_node("global_avgpool", x)
    assert b.shape(b.add_node("mul", scale, x)) == (8, 5, 6)
    rows = b.add_node("slice", x, axis=2, start=0, end=1)
    assert b.shape(b.add_node("mul", rows, b.add_node("slice", scale, start=0, end=1))) == (8, 5, 1)


def test_slice_and_channel_shuffle_shapes():
    b = GraphBuilder()
    x = b.input((12, 7, 9))
    assert b.shape(b.add_node("slice", x, start=4, end=12)) == (8, 7, 9)
    assert b.shape(b.add_node("slice", x, axis=2, start=3, end=4)) == (12, 7, 1)
    assert b.shape(b.add_node("channel_shuffle", x, groups=3)) == (12, 7, 9)
    vector = b.add_node("flatten", x)
    assert b.shape(b.add_node("slice", vector, start=10, end=30)) == (20,)


@pytest.mark.parametrize(
    ("op", "shapes", "attributes", "message"),
    [
        ("mul", [(8, 5, 6), (8, 5, 2)], {},
         "input shapes [8, 5, 6] and [8, 5, 2] do not broadcast"),
        ("mul", [(8, 5, 6), (5, 6)], {}, "input shapes [8, 5, 6] and [5, 6] do not broadcast"),
        ("channel_shuffle", [(6, 4, 4)], {"groups": 4}, "groups=4 must divide the input "
                                                        "channels (6)"),
        ("channel_shuffle", [(6,)], {"groups": 2}, "expects a rank-3 (C, H, W) input"),
        ("channel_shuffle", [(6, 4, 4)], {}, "missing required attribute 'groups'"),
        ("slice", [(6, 4, 4)], {"start": 3, "end": 3}, "range [3, 3) must be non-empty"),
        ("slice", [(6, 4, 4)], {"axis": 1, "start": 2, "end": 5},
         "range [2, 5) must be non-empty and within axis 1 of size 4"),
        ("slice", [(6, 4, 4)], {"axis": 3, "start": 0, "end": 1},
         "axis 3 is out of range for a rank-3 input"),
        ("slice", [(6, 4, 4)], {"axis": -1, "start": 0, "end": 1}, "axis -1 is out of range"),
        ("slice", [(6, 4, 4)], {"start": -2, "end": 1},
         "attribute 'start' must not be negative"),
    ],
)
def test_impossible_new_op_configurations_are_named(op, shapes, attributes, message):
    b = GraphBuilder()
    inputs = [b.input(shape, name=f"input_{k}") for k, shape in enumerate(shapes)]
    with pytest.raises(GraphError, match=re.escape(f"node '{op}_0' ({op}): {message}")):
        b.add_node(op, *inputs, **attributes)


def test_json_round_trip_keeps_id_and_structure():
    g = small_cnn()
    again = Graph.from_json(g.to_json())
    assert again.id == g.id
    assert again == g
    assert again.shapes == g.shapes


def test_id_ignores_names_and_attribute_spelling_but_not_structure():
    g = small_cnn()
    data = g.to_dict()
    rename = {n["name"]: f"renamed_{i}" for i, n in enumerate(data["nodes"])}
    for node in data["nodes"]:
        node["name"] = rename[node["name"]]
        node["inputs"] = [rename[i] for i in node["inputs"]]
        if node["op"] == "conv2d":
            node["attrs"]["kernel_size"] = node["attrs"]["kernel_size"][0]
    data["outputs"] = [rename[o] for o in data["outputs"]]
    assert Graph.from_dict(data).id == g.id
    assert small_cnn(width=16).id != g.id
    assert small_cnn(kernel=5).id != g.id
    assert small_cnn(kernel=5) != g


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["nodes"][1].update(op="conv3d"), "node 'conv2d_0': unknown op 'conv3d'"),
        (lambda d: d["nodes"][1]["attrs"].update(out_channels=-4),
         "node 'conv2d_0' (conv2d): attribute 'out_channels' must be positive"),
        (lambda d: d["nodes"][1]["attrs"].update(groups=5), "groups=5 must divide"),
        (lambda d: d["nodes"][1]["attrs"].update(kernel_size=99),
         "node 'conv2d_0' (conv2d): output would be empty"),
        (lambda d: d["nodes"][1].update(inputs=["nowhere"]),
         "node 'conv2d_0' (conv2d): input 'nowhere' is not defined before it"),
        (lambda d: d["nodes"][1]["attrs"].update(colour="red"), "unknown attribute(s) colour"),
        (lambda d: d.update(outputs=["ghost"]), "output 'ghost' is not a node"),
        (lambda d: d["nodes"][6].update(inputs=["maxpool_0"]), "node 'add_0' (add): takes"),
    ],
)
def test_invalid_graphs_name_the_node_and_problem(mutate, message):
    data = small_cnn().to_dict()
    mutate(data)
    with pytest.raises(GraphError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Graph.from_dict(data)


def test_malformed_json_is_a_graph_error():
    with pytest.raises(GraphError, match="malformed graph JSON"):
        Graph.from_json("{not json")
    with pytest.raises(GraphError, match="'nodes' list"):
        Graph.from_dict({"nodes": "x", "outputs": []})


def test_every_op_has_a_shape_function():
    assert {"conv2d", "batchnorm", "relu", "relu6", "hardswish", "sigmoid", "gelu", "maxpool",
            "avgpool", "global_avgpool", "add", "concat", "linear", "flatten", "identity",
            "zero", "lstm", "silu", "hardsigmoid", "mul", "slice", "channel_shuffle"} <= set(OPS)


def test_weights_are_deterministic_and_shaped():
    g = small_cnn()
    a, b = init_weights(g, seed=3), init_weights(g, seed=3)
    assert a["conv2d_0"]["weight"].shape == (8, 3, 3, 3)
    assert a["linear_0"]["weight"].shape == (10, 16)
    assert all(np.array_equal(a[n][p], b[n][p]) for n in a for p in a[n])
    assert not np.array_equal(a["conv2d_0"]["weight"], init_weights(g, 4)["conv2d_0"]["weight"])
    json.dumps(g.to_dict())
