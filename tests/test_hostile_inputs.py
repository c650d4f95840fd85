"""Bad input of every kind ends in one line ``error: ...`` with exit code 2, before any work:
numeric options of every command out of range or not finite, malformed and hostile files
(JSON specs, graph JSON, CSV and Parquet imports, arch maps, ONNX models), databases that are
no LENNA store, and the host's limits (open files).

The table runs ``lenna`` in this process (``main()`` with ``sys.argv`` set), about a
hundredth of the cost of a subprocess; a few cases run as subprocesses too, to show the two
agree line for line.
"""

from __future__ import annotations

import hashlib
import json
import resource
import shlex
import signal
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, assert_one_line_error, cnn_graph, run_lenna

from lenna_core import limits
from lenna_core.cli import main
from lenna_core.host_limits import OUT_OF_MEMORY, host_limit_message
from lenna_core.learning.splits import MIN_TRAIN

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
"""A nasbench201 cell for the import files."""
LONG = "--source nasbench201 --arch-col arch --target-cols device --latency-col ms"
"""The options of a long-format import."""


def _onnx_files(where) -> None:
    """A real ONNX model (LENNA's cnn test graph), cut and scrambled copies, and models whose
    constants are external data outside the model's folder, missing, or memory bombs."""
    import onnx
    from onnx import TensorProto, helper

    from lenna_core.ir import init_weights
    from lenna_onnxruntime.convert import graph_to_onnx

    good = graph_to_onnx(cnn_graph(), init_weights(cnn_graph())).SerializeToString()
    (where / "truncated.onnx").write_bytes(good[: len(good) // 2])
    (where / "random.onnx").write_bytes(np.random.default_rng(0).bytes(4096))
    (where / "empty.onnx").write_bytes(b"")
    (where / "text.onnx").write_text("hello")

    def save(name, nodes, inputs, initializers=()):
        output = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
        graph = helper.make_graph(nodes, "g", inputs, [output], list(initializers))
        (where / name).write_bytes(helper.make_model(graph).SerializeToString())

    vector = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 12])]
    image = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])]
    reshape = [helper.make_node("Reshape", ["x", "shape"], ["y"])]
    for name, location in (("outside", "../../../../etc/passwd"), ("absolute", "/etc/passwd"),
                           ("missing", "nowhere.bin")):
        shape = helper.make_tensor("shape", TensorProto.INT64, [2], [1, 12])
        shape.ClearField("int64_data")
        shape.data_location = TensorProto.EXTERNAL
        entry = shape.external_data.add()
        entry.key, entry.value = "location", location
        save(f"external-{name}.onnx", reshape, vector, [shape])
    save("huge-dims.onnx", [helper.make_node("Relu", ["x"], ["y"])],
         [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 2**40, 2**40])])
    bomb = helper.make_tensor("s", TensorProto.INT64, [3], [100_000] * 3)
    save("constant-bomb.onnx", [helper.make_node("ConstantOfShape", ["s"], ["c"]),
                                helper.make_node("Reshape", ["x", "c"], ["y"])], vector, [bomb])
    save("no-kernel.onnx", [helper.make_node("MaxPool", ["x"], ["y"])], image)
    save("concat-no-axis.onnx", [helper.make_node("Concat", ["x", "x"], ["y"])], image)
    save("loop.onnx", [helper.make_node("Loop", ["x"], ["y"])], image)
    onnx.checker.check_model(onnx.load_from_string(good))


def _graph_files(where) -> None:
    """Architecture and Graph IR JSON files, each wrong in one way."""
    graph = cnn_graph().to_dict()

    def save(name, data):
        (where / name).write_text(data if isinstance(data, str) else json.dumps(data))

    def edited(change):
        copy = json.loads(json.dumps(graph))
        change(copy)
        return {"graph": copy}

    save("plain.json", {"graph": graph})
    save("spec-list.json", {"graph": graph, "spec": [1, 2]})
    save("source-int.json", {"graph": graph, "source": 5})
    save("outputs-list.json", edited(lambda g: g.update(outputs=[["x"]])))
    save("name-list.json", edited(lambda g: g["nodes"][1].update(name=["a"])))
    save("huge-input.json", edited(lambda g: g["nodes"][0]["attrs"].update(shape=[3, 2**40,
                                                                                  2**40])))
    save("unknown-op.json", edited(lambda g: g["nodes"][1].update(op="conv3d")))
    save("cycle.json", edited(lambda g: g["nodes"][1].update(inputs=["linear_1"])))
    save("eps-overflow.json", json.dumps({"graph": graph}).replace(
        '"eps": 1e-05', '"eps": 1' + "0" * 400, 1))
    save("format.json", {"graph": {**graph, "format": "lenna-graph/9"}})
    save("deep.json", "[" * 100_000 + "]" * 100_000)
    save("deep-object.json", '{"a":' * 100_000 + "1" + "}" * 100_000)
    save("long-number.json", '{"width": ' + "9" * 5000 + "}")
    save("null.json", "null")
    save("empty.json", "")
    save("nan-nodes.json", '{"graph": {"nodes": NaN, "outputs": []}}')
    (where / "latin1.json").write_bytes(b'{"a": "\xff"}')


def _import_files(where) -> None:
    """CSV and Parquet files of latencies and arch maps, each wrong in one way."""
    def csv(name, text):
        (where / name).write_text(text)

    csv("empty.csv", "")
    csv("header.csv", "arch,device,ms\n")
    (where / "binary.csv").write_bytes(np.random.default_rng(1).bytes(2000))
    csv("bad-latency.csv", f"arch,device,ms\n{ARCH},pi,abc\n{ARCH},pi,-1\n")
    csv("inf-latency.csv", f"arch,device,ms\n{ARCH},pi,1e400\n")
    csv("huge-latency.csv", f"arch,device,ms,gpu\n{ARCH},pi,1{'0' * 400},x\n")
    csv("deep-spec.csv", 'arch,device,ms\n"' + '{""a"":' * 5000 + "1" + "}" * 5000 + '",pi,1\n')
    csv("bad-arch.csv", "arch,device,ms\n|conv~0|+|x|,pi,1.0\n")
    csv("empty-target.csv", f"arch,device,ms\n{ARCH},,1.0\n")
    csv("indexed.csv", "arch,device,ms\n1,pi,1.0\n")
    csv("ragged.csv", f"arch,device,ms\n{ARCH},pi,1.0,7,8\n\"unterminated\n")
    csv("map-one-column.csv", "index\n1\n")
    csv("map-other-index.csv", f"index,spec\n2,{ARCH}\n")
    (where / "garbage.parquet").write_bytes(b"PAR1garbagePAR1")
    pd.DataFrame({"arch": [[1, 2], [3]], "device": ["a", "b"], "ms": [1.0, 2.0]}).to_parquet(
        where / "lists.parquet")
    pd.DataFrame({"arch": [{"a": 1}], "device": ["a"], "ms": [1.0]}).to_parquet(
        where / "structs.parquet")
    csv("latencies.txt", "arch,device,ms\n")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A folder of hostile inputs: databases that are no LENNA store, ONNX models, graph and
    spec JSON, CSV and Parquet files."""
    where = tmp_path_factory.mktemp("hostile")
    (where / "garbage.db").write_bytes(b"garbage" * 500)
    (where / "empty.db").write_bytes(b"")
    (where / "directory.db").mkdir()
    with sqlite3.connect(where / "other.db") as connection:
        connection.execute("CREATE TABLE notes (text)")
    (where / "a-file").write_text("")
    _onnx_files(where)
    _graph_files(where)
    _import_files(where)
    return where


def snapshot(folder) -> dict[str, str]:
    """Every file under ``folder`` with the sha256 of its content."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_in_process(capfd, *args: str) -> subprocess.CompletedProcess[str]:
    """``lenna ARGS`` in this process: ``main()`` with ``sys.argv`` set, its exit code and
    what it wrote to stdout and stderr (the signal handlers it sets are put back)."""
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    argv = sys.argv
    capfd.readouterr()
    sys.argv = ["lenna", *args]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        sys.argv = argv
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(["lenna", *args], code, out, err)


SECONDS = "a finite number of seconds, more than 0"
CASES = [
    # lenna run: every numeric option, out of range, not finite, not a number
    ("run --n 0", "--n must be at least 1 and at most 100000, got 0"),
    ("run --n -5", "--n must be at least 1 and at most 100000, got -5"),
    ("run --n 100001", "--n must be at least 1 and at most 100000, got 100001"),
    ("run --n 99999999999999999999999", "at most 100000, got 99999999999999999999999"),
    ("run --n many", "Invalid value for '--n'"),
    ("run --n 1.5", "Invalid value for '--n'"),
    ("run --seed -1", "--seed must be at least 0 and at most 4294967295, got -1"),
    ("run --seed 4294967296", "--seed must be at least 0 and at most 4294967295"),
    ("run --batch-size 0", "--batch-size must be at least 1 and at most 4096, got 0"),
    ("run --batch-size 4097", "--batch-size must be at least 1 and at most 4096, got 4097"),
    ("run --budget nan", f"--budget must be {SECONDS} and at most 3600, got nan"),
    ("run --budget inf", f"--budget must be {SECONDS} and at most 3600, got inf"),
    ("run --budget -inf", f"--budget must be {SECONDS} and at most 3600, got -inf"),
    ("run --budget 0", f"--budget must be {SECONDS} and at most 3600, got 0.0"),
    ("run --budget -1", f"--budget must be {SECONDS} and at most 3600, got -1.0"),
    ("run --budget 1e308", f"--budget must be {SECONDS} and at most 3600, got 1e+308"),
    ("run --budget 3601", f"--budget must be {SECONDS} and at most 3600, got 3601.0"),
    ("run --budget two", "Invalid value for '--budget'"),
    ("run --passes 0", "--passes must be at least 1 and at most 5, got 0"),
    ("run --passes 6", "--passes must be at least 1 and at most 5, got 6"),
    ("run --timeout nan", f"--timeout must be {SECONDS} and at most 86400, got nan"),
    ("run --timeout inf", f"--timeout must be {SECONDS} and at most 86400, got inf"),
    ("run --timeout 0", f"--timeout must be {SECONDS} and at most 86400, got 0.0"),
    ("run --timeout 86401", f"--timeout must be {SECONDS} and at most 86400, got 86401.0"),
    ("run --profile-runs -1", "--profile-runs must be at least 0 and at most 1000, got -1"),
    ("run --profile-runs 1001", "--profile-runs must be at least 0 and at most 1000"),
    ("run --repeats 0", "--repeats must be at least 1 and at most 1000, got 0"),
    ("run --repeats 1001", "--repeats must be at least 1 and at most 1000, got 1001"),
    ("run --tune --tune-budget 0", "--tune-budget must be at least 1 and at most 100000"),
    ("run --threads 0", "--threads must be a count from 1 to"),
    ("run --threads -1", "--threads must be a count from 1 to"),
    ("run --threads 999", "or auto, got '999'"),
    ("run --threads many", "or auto, got 'many'"),
    ("run --protocol adaptive:1.2.3", "bad --protocol 'adaptive:1.2.3'; use adaptive[:CI]"),
    ("run --protocol adaptive:.", "bad --protocol 'adaptive:.'; use adaptive[:CI]"),
    ("run --protocol adaptive:0",
     "--protocol adaptive:CI must be a finite number, more than 0 and at most 0.5, got 0.0"),
    ("run --protocol adaptive:0.9", "at most 0.5, got 0.9"),
    ("run --protocol adaptive:nan", "bad --protocol 'adaptive:nan'"),
    ("run --protocol fixed:0", "--protocol fixed:N must be at least 1 and at most 5000, got 0"),
    ("run --protocol fixed:99999", "at most 5000, got 99999"),
    ("run --protocol fixed", "bad --protocol 'fixed': fixed needs a run count"),
    ("run --protocol lenna:3", "bad --protocol 'lenna:3': lenna takes no argument"),
    ("run --protocol median", "bad --protocol 'median'"),
    ("run --cpus 0,99", "--cpus 0,99: usable CPUs are"),
    ("run --cpus one", "--cpus must be a comma-separated list of CPU numbers, got 'one'"),
    ("run -O input_size=1e999", "resnet-family option input_size must be an int >= 32, got inf"),
    ("run -O input_size=-1", "resnet-family option input_size must be an int >= 32, got -1"),
    ("run -O =3", "option '=3' must look like key=value"),
    ("run --features ,", "give at least one featurizer with --features"),
    ("run --out {H}/a-file/sub", "cannot write to --out"),
    # lenna import, evaluate, transfer, sample, features, layers, kernels, doctor
    (f"import {{H}}/header.csv {LONG} --batch-size 0",
     "--batch-size must be at least 1 and at most 4096, got 0"),
    (f"import {{H}}/header.csv {LONG} --batch-size 5000", "at most 4096, got 5000"),
    (f"import {{H}}/header.csv {LONG} --unit h", "unknown --unit 'h'; use one of ms, us, s"),
    (f"import {{H}}/header.csv {LONG} --where =", "--where '=' must look like COL=VALUE"),
    (f"import {{H}}/header.csv {LONG} --wide", "--wide takes no --latency-col or --target-cols"),
    ("import {H}/header.csv --source nasbench201 --arch-col arch",
     "give --target-cols and --latency-col (long format), or --wide"),
    ("evaluate --source nasbench201 --target pi --train-size 1",
     f"--train-size must be at least {MIN_TRAIN} and at most 10000000, got 1"),
    ("evaluate --source nasbench201 --target pi --repeats 0",
     "--repeats must be at least 1 and at most 1000, got 0"),
    ("evaluate --source nasbench201 --target pi --seed -1", "--seed must be at least 0"),
    ("evaluate --source nasbench201 --target pi --anchors 0",
     "--anchors must be at least 1 and at most 100000, got 0"),
    ("evaluate --source nasbench201 --target pi --tune-budget -3",
     "--tune-budget must be at least 1 and at most 100000, got -3"),
    ("evaluate --source nasbench201 --target pi --out {H}/a-file",
     "cannot write to --out {H}/a-file: {H}/a-file is not a directory"),
    ("transfer --target pi --anchors a --shots -1",
     "--shots must be at least 0 and at most 100000, got -1"),
    ("transfer --target pi --anchors a --anchor-samples 0",
     "--anchor-samples must be at least 1 and at most 1000000, got 0"),
    ("transfer --target pi --anchor a --top-n 0",
     "--top-n must be at least 1 and at most 100000, got 0"),
    ("transfer --target pi --anchors a --repeats 5000", "--repeats must be at least 1"),
    ("transfer --target pi --anchors a --seed -3", "--seed must be at least 0"),
    ("transfer --target pi", "give --anchors A,B,... (few-shot) or --anchor A"),
    ("sample --seed -1", "--seed must be at least 0 and at most 4294967295, got -1"),
    ("sample --seed 4294967296", "got 4294967296"),
    ("sample --source onnx-file", "the onnx-file source cannot sample"),
    ("sample -O max_depth_factor=nan", "option max_depth_factor must be in (0, 4]"),
    ("features --seed -5", "--seed must be at least 0 and at most 4294967295, got -5"),
    ("features --seed 1 --batch-size 0", "--batch-size must be at least 1 and at most 4096"),
    ("features", "give exactly one of --arch ID_OR_SPEC, --seed K or --model NAME"),
    ("features --seed 1 --features ,", "give at least one featurizer with --features"),
    ("features --arch {H}", "--arch {H} is not a file"),
    ("layers --seed 1 --threads 0", "--threads must be a count from 1 to"),
    ("layers --seed 1 --protocol adaptive:x", "bad --protocol 'adaptive:x'"),
    ("layers --seed 1 --batch-size -1", "--batch-size must be at least 1"),
    ("kernels --seed 1 --threads 999", "or auto, got '999'"),
    ("kernels --seed 1 --protocol fixed:0", "--protocol fixed:N must be at least 1"),
    ("doctor --seconds nan", "--seconds must be > 0 and <= 60, not nan"),
    ("doctor --seconds 0", "--seconds must be > 0 and <= 60, not 0.0"),
    ("doctor --seconds 61", "--seconds must be > 0 and <= 60, not 61.0"),
    ("frobnicate", "No such command 'frobnicate'"),
    ("run --bogus", "No such option: --bogus"),
    # databases that are no LENNA store
    ("export out.csv --db {H}/garbage.db", "garbage.db: file is not a database"),
    ("export out.csv --db {H}/empty.db", "empty.db"),
    ("export out.csv --db {H}/directory.db", "directory.db is a directory"),
    ("export out.csv --db {H}/other.db", "other.db is not a LENNA database"),
    ("export out.csv --db {H}/missing.db", "missing.db does not exist"),
    ("export out.csv --db postgresql://lenna@localhost/lenna", "needs the postgresql driver"),
    ("run --n 2 --db {H}/other.db --out out", "other.db is not a LENNA database"),
    ("run --n 2 --db {H}/directory.db --out out", "directory.db is a directory"),
    ("run --n 2 --db postgresql://lenna@localhost/lenna --out out",
     "needs the postgresql driver"),
    ("run --n 2 --db {H}/no/such/dir/lenna.db --out out", "does not exist"),
    ("evaluate --source nasbench201 --target pi --db {H}/garbage.db",
     "garbage.db: file is not a database"),
    ("features --arch deadbeef --db {H}/other.db", "other.db is not a LENNA database"),
    (f"import {{H}}/bad-latency.csv {LONG} --db {{H}}/directory.db",
     "directory.db is a directory"),
    # JSON specs given inline
    ("features --arch '{{bad json'", "--arch is not valid JSON"),
    ("features --arch '{{\"block\": \"triangle\"}}'", "resnet-family spec: missing field"),
    ("features --arch '{{\"block\": \"basic\", \"blocks\": [2, 2, 2, 2], \"width\": -1}}'",
     "resnet-family spec"),
    ("features --arch '" + '{{"a":' * 5000 + "1" + "}}" * 5000 + "'",
     "--arch is not valid JSON: maximum recursion depth exceeded"),
    ("features --source nasbench201 --arch '{{\"arch\": 5}}'",
     "nasbench201 arch must be a string, got int"),
    ("features --source nasbench201 --arch '{{\"arch\": \"bad\"}}'",
     "nasbench201 arch string needs 3 groups separated by '+'"),
    ("features --source conv-layers --arch '{{\"kernel\": 3, \"filters\": 1e999}}'",
     "conv-layers spec: 'filters' must be an int in 1..4096, got inf"),
    ("features --source darts-cells --arch '{{\"block\": \"normal\", \"channels\": 8, "
     "\"alpha\": [[1e999]]}}'", "darts-cells spec: alpha must be"),
    ("features --source training-workloads --arch '{{\"model\": \"alexnet\"}}'",
     "training-workloads spec"),
    ("features --source onnx-file --arch '{{\"path\": 5}}'",
     "the onnx-file spec needs a 'path' to an ONNX file, got 5"),
    ("features --source onnx-file --arch '{{\"path\": \"x.onnx\", \"y\": 1}}'",
     "unknown onnx-file spec field(s) y"),
    # architecture and Graph IR files
    ("features --arch {H}/spec-list.json", "an architecture's 'source' must be a string and its "
                                          "'spec' an object, got str and list"),
    ("features --arch {H}/source-int.json", "got int and dict"),
    ("run --arch {H}", "--arch {H} is not a file"),
    ("run --arch '{{bad json'", "--arch is not valid JSON"),
    ("run --arch {H}/plain.json", "comes from source 'file', not 'resnet-family'"),
    ("run --arch deadbeef --db {H}/other.db", "other.db is not a LENNA database"),
    ("features --arch {H}/outputs-list.json", "a graph's 'outputs' must be a list of node names"),
    ("features --arch {H}/name-list.json", "a node of op 'conv2d' has no name"),
    ("features --arch {H}/huge-input.json",
     "node 'input' (input): its output of shape [3, 1099511627776, 1099511627776] has more "
     "than 2147483648 elements"),
    ("layers --arch {H}/huge-input.json", "has more than 2147483648 elements"),
    ("kernels --arch {H}/huge-input.json", "has more than 2147483648 elements"),
    # the search
    ("search --epochs -1", "--epochs must be at least 0 and at most 10000, got -1"),
    ("search --train-epochs 0", "--train-epochs must be at least 1 and at most 10000, got 0"),
    ("search --image-size 3", "--image-size must be at least 4 and at most 512, got 3"),
    ("search --limit 5", "--limit must be at least 10 and at most 10000000, got 5"),
    ("search --lambda=-1", "λ must be a finite number >= 0, got -1.0"),
    ("search --lambda nan", "λ must be a finite number >= 0, got nan"),
    ("search --lambda 0 --data {H}/empty.json", "empty.json is neither a .npz file nor a dir"),
    ("search --lambda 0.3", "λ > 0 needs a latency predictor: give --predictor DIR"),
    ("search --lambda 0 --backend tpu", "unknown backend 'tpu'"),
    ("search --lambda 0 --data /nonexistent/images", "/nonexistent/images does not exist"),
    ("search --lambda 0.1 --predictor /nonexistent/p", "no predictor at /nonexistent/p"),
    ("search --lambda 0 --source resnet-family", "source resnet-family has no search space"),
    ("search --lambda 0 -S channels=0", "search option channels must be an integer in [1, 256]"),
    ("features --arch {H}/unknown-op.json", "unknown op 'conv3d'"),
    ("features --arch {H}/cycle.json", "input 'linear_1' is not defined before it"),
    ("features --arch {H}/eps-overflow.json", "attribute 'eps' must be a float"),
    ("features --arch {H}/format.json", "unsupported graph format 'lenna-graph/9'"),
    ("features --arch {H}/deep.json", "deep.json is not valid JSON: maximum recursion depth"),
    ("features --arch {H}/deep-object.json", "is not valid JSON: maximum recursion depth"),
    ("features --arch {H}/long-number.json", "long-number.json is not valid JSON: Exceeds the "
                                            "limit"),
    ("features --arch {H}/null.json", "resnet-family spec must be an object, got NoneType"),
    ("features --arch {H}/empty.json", "empty.json is not valid JSON"),
    ("features --arch {H}/latin1.json", "latin1.json is not valid JSON: 'utf-8' codec"),
    ("features --arch {H}/nan-nodes.json", "a graph needs a 'nodes' list and an 'outputs' list"),
    # ONNX models
    *((f"features --source onnx-file --arch '{{{{\"path\": \"{{H}}/{name}\"}}}}'", fragment)
      for name, fragment in [
          ("truncated.onnx", "truncated.onnx is not a valid ONNX model"),
          ("random.onnx", "random.onnx is not a valid ONNX model"),
          ("empty.onnx", "empty.onnx is not a valid ONNX model: it has no IR version or no "
                         "nodes"),
          ("text.onnx", "text.onnx is not a valid ONNX model"),
          ("external-outside.onnx", "the data of tensor 'shape' cannot be read: Data of "
                                    "TensorProto ( tensor name: shape) should be file inside"),
          ("external-absolute.onnx", "should be a relative path, but it is an absolute path"),
          ("external-missing.onnx", "nowhere.bin, but it is not regular file"),
          ("huge-dims.onnx", "has more than 2147483648 elements"),
          ("constant-bomb.onnx", "would fold a constant of shape [100000, 100000, 100000]; "
                                 "LENNA folds constants of at most 4194304 elements"),
          ("no-kernel.onnx", "node #0 (MaxPool): has no attribute 'kernel_shape'"),
          ("concat-no-axis.onnx", "node #0 (Concat): has no attribute 'axis'"),
          ("loop.onnx", "loop.onnx uses ops LENNA cannot import: Loop"),
          ("missing.onnx", "missing.onnx: no such ONNX file"),
      ]),
    # CSV and Parquet imports, arch maps
    *((f"import {{H}}/{name} {LONG} {extra}".strip(), fragment) for name, extra, fragment in [
        ("empty.csv", "", "empty.csv as csv: No columns to parse from file"),
        ("header.csv", "", "no usable row in header.csv: it has no rows"),
        ("binary.csv", "", "binary.csv as csv: 'utf-8' codec can't decode"),
        ("ragged.csv", "", "cannot read {H}/ragged.csv as csv"),
        ("bad-latency.csv", "", "2 with a bad latency (non-numeric, NaN, zero or negative)"),
        ("inf-latency.csv", "", "1 with a bad latency (non-numeric, NaN, zero or negative), "
                                "e.g. row 1: inf"),
        ("huge-latency.csv", "", "1 with a bad latency (non-numeric, NaN, zero or negative), "
                                 "e.g. row 1: 1000000000"),
        ("deep-spec.csv", "", "is not valid JSON: maximum recursion depth"),
        ("bad-arch.csv", "", "with an unknown or unparseable spec"),
        ("empty-target.csv", "", "with an empty target column, e.g. row 1: device is empty"),
        ("indexed.csv", "", "1 is an index; give --arch-map FILE.csv"),
        ("indexed.csv", "--arch-map {H}/map-one-column.csv",
         "--arch-map map-one-column.csv needs two columns, an index and a spec"),
        ("indexed.csv", "--arch-map {H}/empty.csv", "cannot read --arch-map {H}/empty.csv"),
        ("indexed.csv", "--arch-map {H}/binary.csv", "cannot read --arch-map {H}/binary.csv"),
        ("indexed.csv", "--arch-map {H}/nowhere.csv", "cannot read --arch-map {H}/nowhere.csv"),
        ("indexed.csv", "--arch-map {H}", "cannot read --arch-map {H}"),
        ("indexed.csv", "--arch-map {H}/map-other-index.csv", "index '1' is not in --arch-map"),
        ("header.csv", "--where device=pi", "no row of header.csv has device = pi"),
        ("bad-latency.csv", "--where device=gpu", "no row of bad-latency.csv has device = gpu"),
        ("garbage.parquet", "", "garbage.parquet as parquet"),
        ("lists.parquet", "", "'[1 2]' is a ndarray, not a spec"),
        ("structs.parquet", "", "\"{{'a': 1}}\" is a dict, not a spec"),
        ("latencies.txt", "", "cannot import latencies.txt: unknown extension .txt"),
        ("nowhere.csv", "", "cannot read {H}/nowhere.csv: no such file"),
    ]),
    ("import {H}/bad-latency.csv --source nasbench201 --arch-col spec --target-cols device "
     "--latency-col ms", "--arch-col: no column 'spec' in bad-latency.csv"),
    ("import {H}/huge-latency.csv --source nasbench201 --arch-col arch --wide",
     "--wide: huge-latency.csv has no numeric column besides arch"),
]


@pytest.mark.parametrize(("command", "fragment"), CASES)
def test_bad_input_is_one_line_and_exit_2(command, fragment, hostile, tmp_path, monkeypatch,
                                          capfd):
    before = snapshot(hostile)
    monkeypatch.chdir(tmp_path)
    args = [arg.format(H=hostile) for arg in shlex.split(command)]
    result = run_in_process(capfd, *args)
    assert "unexpected" not in result.stderr
    assert_one_line_error(result, fragment.format(H=hostile))
    assert list(tmp_path.iterdir()) == [], "a command that fails leaves nothing behind"
    assert snapshot(hostile) == before, "the hostile files are read, never written"


def test_the_table_covers_every_command_and_numeric_option():
    """Every command but the read-only ones is in the table, and every option bound of
    :mod:`lenna_core.limits` is exercised out of range."""
    commands = {shlex.split(command)[0] for command, _ in CASES}
    assert commands >= {"run", "import", "export", "evaluate", "transfer", "sample",
                        "features", "layers", "kernels", "doctor"}
    bounds = {v.option for v in vars(limits).values() if isinstance(v, limits.Bound)}
    assert {b for b in bounds if not any(b.split()[0] + " " in c for c, _ in CASES)} == set()
    assert len(CASES) >= 100


@pytest.mark.parametrize("command", [
    "run --budget nan", "run --protocol adaptive:1.2.3", "sample --seed -1",
    "export out.csv --db {H}/other.db", "features --arch {H}/huge-input.json",
    "run --n many"])
def test_in_process_runner_matches_a_subprocess(command, hostile, tmp_path, monkeypatch,
                                                capfd):
    monkeypatch.chdir(tmp_path)
    args = [arg.format(H=hostile) for arg in shlex.split(command)]
    inside = run_in_process(capfd, *args)
    outside = run_lenna(*args, cwd=tmp_path)
    assert (inside.returncode, inside.stderr, inside.stdout) == (
        outside.returncode, outside.stderr, outside.stdout)


def test_too_many_open_files_says_how_to_raise_the_limit(tmp_path):
    """``ulimit -n 12``: the measurement worker cannot start; one line with the fix."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    result = subprocess.run(
        [sys.executable, "-m", "lenna_core", "run", "--n", "1", "-O", "input_size=32",
         "--db", str(tmp_path / "l.db"), "--out", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (12, hard)))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == ("error: too many open files (limit 12); raise it with "
                         "'ulimit -n 4096' and run again")
    assert all(line.startswith("warning: this host is busy") for line in lines[:-1]), lines


def test_host_limits_are_one_line_with_the_fix(tmp_path):
    """Real errors of the host's limits, raised directly or as the cause of another."""
    with pytest.raises(OSError) as full:
        with open("/dev/full", "w") as device:
            device.write("x")
    assert host_limit_message(full.value) == (
        "no space left on device; free some space or write to another disk (--db, --out), "
        "and run again")
    with pytest.raises(MemoryError) as memory:
        bytearray(1 << 62)
    assert host_limit_message(memory.value) == OUT_OF_MEMORY
    try:
        try:
            raise full.value
        except OSError as cause:
            raise RuntimeError("could not save") from cause
    except RuntimeError as wrapped:
        assert host_limit_message(wrapped).startswith("no space left on device")
    with pytest.raises(FileNotFoundError) as missing:
        (tmp_path / "nowhere").read_text()
    assert host_limit_message(missing.value) is None
