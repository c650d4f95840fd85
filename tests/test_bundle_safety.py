"""Predictor bundles are safe to load from anywhere: each way of damaging, editing or forging a
real saved bundle is refused with one PredictorError line, a malformed model file cannot crash
the process, signatures prove origin, and a failed save leaves the earlier bundle as it was."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, assert_one_line_error, run_lenna

from lenna_core.errors import LennaError, PluginError, PredictorError
from lenna_core.learning.features import named_features
from lenna_core.learning.predictor import load_predictor, save_predictor
from lenna_core.records import Architecture, Workload

KEY = "LENNA_PREDICTOR_KEY"
SOURCE = {"input_size": 32, "max_depth_factor": 0.5, "max_width_factor": 1.5}


def _fit_bundle(registry, directory: Path, estimator: str, params: dict, rows: int = 12):
    """Fit ``estimator`` on layer-stats features of a few sampled ResNets (a made-up latency
    that grows with MACs) and save it as a real bundle; returns the architectures."""
    source = registry.create("source", "resnet-family", SOURCE)
    featurizer = registry.create("featurizer", "layer-stats", {})
    rng = np.random.default_rng(0)
    archs = [source.sample(rng) for _ in range(rows)]
    table = [named_features(featurizer.name, featurizer.featurize(Workload(a))) for a in archs]
    names = sorted(table[0])
    X = np.array([[row[n] for n in names] for row in table])
    y = np.log(1e-3 + 1e-2 * X[:, 0] / X[:, 0].max())
    model = registry.create("estimator", estimator, params).fit(X, y)
    info = {"workload": Workload(archs[0]).settings(),
            "source": {"name": "resnet-family", "options": SOURCE},
            "target": {"backend": "onnxruntime", "id": "test", "fingerprint": {}},
            "training_data": {"rows": rows, "sha256": "0" * 64}, "metrics": {}}
    save_predictor(directory, model, [featurizer], names, info)
    return archs, X


@pytest.fixture(scope="module")
def saved(registry, tmp_path_factory):
    """Real bundles saved once (LightGBM, ridge, an ensemble of ridge and linear) and an
    architecture file."""
    base = tmp_path_factory.mktemp("bundles")
    archs, X = _fit_bundle(registry, base / "lightgbm", "lightgbm", {"n_estimators": 20},
                           rows=24)
    _fit_bundle(registry, base / "ridge", "ridge", {})
    _fit_bundle(registry, base / "ensemble", "ensemble", {"members": "ridge,linear", "k": 2})
    (base / "arch.json").write_text(json.dumps(archs[1].to_dict()))
    return base, X


@pytest.fixture
def bundle_of(saved, tmp_path):
    """A fresh copy of a saved bundle, by estimator name."""
    def copy(name: str) -> Path:
        target = tmp_path / "bundle"
        shutil.copytree(saved[0] / name, target, symlinks=True)
        return target
    return copy


# --- what an attacker can do: edit anything, then recompute every checksum --------------------


def manifest_of(bundle: Path) -> dict:
    return json.loads((bundle / "predictor.json").read_text())


def reseal(bundle: Path, manifest: dict | None = None) -> None:
    """Relist every file's size and sha256 and recompute the manifest checksum, as anyone can
    (no key involved)."""
    manifest = manifest_of(bundle) if manifest is None else manifest
    if isinstance(manifest.get("files"), dict):
        for name in manifest["files"]:
            path = bundle / name
            if path.is_file():
                data = path.read_bytes()
                manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(),
                                           "size": len(data)}
    body = {k: v for k, v in manifest.items() if k not in ("checksum", "signature")}
    manifest["checksum"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    (bundle / "predictor.json").write_text(json.dumps(manifest))


def edit_manifest(change):
    """A mutation: ``change(manifest)`` edits the manifest, then it is resealed."""
    def mutate(bundle: Path) -> None:
        manifest = manifest_of(bundle)
        change(manifest)
        reseal(bundle, manifest)
    return mutate


def raw_manifest(change):
    """A mutation: ``change(manifest)`` edits the manifest, which is not resealed."""
    def mutate(bundle: Path) -> None:
        manifest = manifest_of(bundle)
        change(manifest)
        (bundle / "predictor.json").write_text(json.dumps(manifest))
    return mutate


def write_manifest(data: bytes):
    def mutate(bundle: Path) -> None:
        (bundle / "predictor.json").write_bytes(data)
    return mutate


def model_text(change):
    """A mutation: ``change(text)`` rewrites model.txt, then the bundle is resealed."""
    def mutate(bundle: Path) -> None:
        path = bundle / "model.txt"
        path.write_bytes(change(path.read_text()).encode("latin-1"))
        reseal(bundle)
    return mutate


def tree_edit(index: int, key: str, values):
    """Replace the values of ``key`` in tree ``index`` with ``values(old values)`` and fix
    tree_sizes, so that only the tree's content is wrong."""
    def change(text: str) -> str:
        head, _, rest = text.partition("\nTree=0\n")
        trees, _, tail = ("Tree=0\n" + rest).partition("end of trees\n")
        blocks = ["Tree=" + b for b in trees.split("Tree=")[1:]]
        lines = blocks[index].split("\n")
        lines = [f"{key}={' '.join(values(line.split('=')[1].split()))}"
                 if line.startswith(f"{key}=") else line for line in lines]
        blocks[index] = "\n".join(lines)
        sizes = " ".join(str(len(b.encode())) for b in blocks)
        head = "\n".join(f"tree_sizes={sizes}" if line.startswith("tree_sizes=") else line
                         for line in head.split("\n"))
        return head + "\n" + "".join(blocks) + "end of trees\n" + tail
    return change


def first_value(key: str, value: str):
    """A mutation: the first of tree 0's ``key`` values becomes ``value`` (resealed)."""
    return model_text(tree_edit(0, key, lambda values: [value, *values[1:]]))


def add_file(name: str, data: bytes = b"x"):
    def mutate(bundle: Path) -> None:
        (bundle / name).parent.mkdir(parents=True, exist_ok=True)
        (bundle / name).write_bytes(data)
    return mutate


def symlink(name: str, target: str, replace: bool = False, outside: bool = False):
    def mutate(bundle: Path) -> None:
        destination = bundle / target
        if outside:
            destination = bundle.parent / "outside"
            shutil.copy(bundle / target, destination)
        if replace:
            (bundle / name).unlink()
        (bundle / name).symlink_to(destination)
    return mutate


def flip_byte(name: str):
    def mutate(bundle: Path) -> None:
        data = bytearray((bundle / name).read_bytes())
        data[len(data) // 2] ^= 1
        (bundle / name).write_bytes(bytes(data))
    return mutate


def sparse(name: str, size: int = 8 * 2**30):
    def mutate(bundle: Path) -> None:
        with (bundle / name).open("wb") as handle:
            handle.truncate(size)
    return mutate


def rename(old: str, new: str):
    def mutate(bundle: Path) -> None:
        (bundle / old).rename(bundle / new)
    return mutate


def skops_model(model_factory, estimator: str | None = None):
    """Replace model.skops with ``model_factory(X)``, X random rows as wide as the bundle's
    features, and reseal (naming ``estimator``)."""
    def mutate(bundle: Path) -> None:
        import skops.io

        width = len(manifest_of(bundle)["feature_names"])
        X = np.random.default_rng(0).random((30, width))
        skops.io.dump(model_factory(X), bundle / "model.skops")
        manifest = manifest_of(bundle)
        if estimator:
            manifest["estimator"] = {"name": estimator, "params": {}}
        reseal(bundle, manifest)
    return mutate


def forest(X):
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(n_estimators=2).fit(X, X[:, 0])


def looping_tree(X):
    """A fitted decision tree whose first node's left child is itself (or out of range):
    scikit-learn's predict would loop or read out of bounds."""
    from sklearn.tree import DecisionTreeRegressor

    model = DecisionTreeRegressor(max_depth=3).fit(X, X[:, 0] + X[:, 1])
    state = model.tree_.__getstate__()
    state["nodes"]["left_child"][0] = 10**6
    model.tree_.__setstate__(state)
    return model


def system_call(X):
    from sklearn.preprocessing import FunctionTransformer

    return FunctionTransformer(func=os.system)


def fifo(name: str):
    def mutate(bundle: Path) -> None:
        os.mkfifo(bundle / name)
    return mutate


def remove(name: str):
    def mutate(bundle: Path) -> None:
        (bundle / name).unlink()
    return mutate


def to_directory(name: str):
    def mutate(bundle: Path) -> None:
        (bundle / name).unlink()
        (bundle / name).mkdir()
    return mutate


def deep(key: str, value):
    def change(manifest: dict) -> None:
        manifest[key] = value
    return change


def drop(key: str):
    def change(manifest: dict) -> None:
        del manifest[key]
    return change


def files_entry(value):
    def change(manifest: dict) -> None:
        manifest["files"] = {**manifest["files"], **value}
    return change


PRINTABLE = "".join(chr(c) for c in random.Random(1).choices(range(32, 127), k=4000))
BINARY = bytes(random.Random(2).choices(range(256), k=4000)).decode("latin-1")

# (id, bundle, mutation, error fragment): every mutation of a real bundle and its one line
CASES = [
    # accidental damage and edits of listed files, without recomputing anything
    ("model-edited", "lightgbm", flip_byte("model.txt"),
     "model.txt has been modified since it was saved (checksum mismatch)"),
    ("model-appended", "lightgbm", add_file("model.txt", b"tree\n" * 3),
     "model.txt is 15 bytes, but the manifest records"),
    ("skops-edited", "ridge", flip_byte("model.skops"),
     "model.skops has been modified since it was saved"),
    ("manifest-edited", "lightgbm", raw_manifest(deep("feature_names", ["x"])),
     "predictor.json has been modified since it was saved (checksum mismatch)"),
    ("model-missing", "lightgbm", remove("model.txt"), "predictor file model.txt is missing"),
    ("model-sparse-8GiB", "lightgbm", sparse("model.txt"),
     "model.txt is 8589934592 bytes, but the manifest records"),
    # exactly the listed files: nothing else, no symlink, nothing special
    ("extra-file", "lightgbm", add_file("notes.txt"),
     "holds notes.txt, a file its manifest does not list"),
    ("unlisted-model_0", "lightgbm", add_file("model_0.txt", b"tree\n"),
     "holds model_0.txt, a file its manifest does not list"),
    ("hidden-file", "ridge", add_file(".DS_Store"), "holds .DS_Store, a file its manifest"),
    ("extra-directory", "lightgbm", add_file("cache/model.txt"),
     "holds cache/, a directory its manifest does not list"),
    ("extra-sparse-8GiB", "lightgbm", sparse("big.bin"), "holds big.bin, a file its manifest"),
    ("renamed-model", "lightgbm", rename("model.txt", "model_0.txt"),
     "holds model_0.txt, a file its manifest does not list"),
    ("model-is-directory", "lightgbm", to_directory("model.txt"),
     "holds model.txt/, a directory its manifest does not list"),
    ("symlink-out", "lightgbm", symlink("model.txt", "model.txt", replace=True, outside=True),
     "holds a symlink, model.txt"),
    ("symlink-in", "lightgbm", symlink("copy.txt", "model.txt"), "holds a symlink, copy.txt"),
    ("symlink-directory", "ridge", symlink("sub", "."), "holds a symlink, sub"),
    ("manifest-symlink", "lightgbm", symlink("predictor.json", "predictor.json", replace=True,
                                             outside=True), "is not a regular file"),
    ("fifo", "lightgbm", fifo("pipe"), "holds pipe, which is not a regular file"),
    ("both-model-files", "lightgbm",
     lambda b: (shutil.copy(b / "model.txt", b / "model_0.txt"),
                edit_manifest(files_entry({"model_0.txt": {}}))(b)),
     "holds both model.txt and model_0.txt"),
    # an ensemble's member directories are implied by its listed files, nothing more
    ("ensemble-extra-member", "ensemble", add_file("member_9/model.skops"),
     "holds member_9/, a directory its manifest does not list"),
    ("ensemble-unlisted-in-member", "ensemble", add_file("member_0/extra.txt"),
     "holds member_0/extra.txt, a file its manifest does not list"),
    ("ensemble-member-missing", "ensemble", remove("member_1/model.skops"),
     "predictor file member_1/model.skops is missing"),
    ("ensemble-state-garbled", "ensemble",
     lambda b: ((b / "ensemble.json").write_text('{"members": [1]}'), reseal(b)),
     "ensemble.json must list members, each with a name, params and a weight"),
    # LightGBM text an attacker resealed: refused before LightGBM's parser could crash on it
    ("lgb-truncated-half", "lightgbm", model_text(lambda t: t[:len(t) // 2]),
     "model.txt in bundle"),
    ("lgb-truncated-200", "lightgbm", model_text(lambda t: t[:200]),
     "is malformed: it holds no tree"),
    ("lgb-garbled-parameter", "lightgbm",
     model_text(lambda t: t.replace("[num_threads: 1]", "garbage")),
     "is malformed: parameter line 'garbage' is not [name: value]"),
    ("lgb-random-text", "lightgbm", model_text(lambda t: PRINTABLE),
     "is malformed: not a LightGBM text model (it does not start with 'tree')"),
    ("lgb-random-bytes", "lightgbm", model_text(lambda t: BINARY),
     "is malformed: not a LightGBM text model (not ASCII text)"),
    ("lgb-tree-sizes", "lightgbm",
     model_text(lambda t: t.replace("tree_sizes=", "tree_sizes=1", 1)),
     "is malformed: tree_sizes does not match tree 0"),
    ("lgb-leaf-out-of-range", "lightgbm", first_value("right_child", "-9"),
     "is malformed: tree 0: node 0 has a bad leaf 8"),
    ("lgb-child-cycle", "lightgbm", first_value("left_child", "0"),
     "is malformed: tree 0: node 0 has a bad child 0"),
    ("lgb-feature-out-of-range", "lightgbm", first_value("split_feature", "999"),
     "split_feature names a feature the model does not have"),
    ("lgb-categorical", "lightgbm", first_value("decision_type", "1"),
     "decision_type is not a numerical split"),
    ("lgb-huge-num-leaves", "lightgbm", first_value("num_leaves", "1000000000"),
     "num_leaves 1000000000 is out of range"),
    ("lgb-short-array", "lightgbm", model_text(tree_edit(0, "leaf_value", lambda v: v[:1])),
     "leaf_value has 1 values, 3 expected"),
    # scikit-learn models an attacker resealed
    ("skops-other-regressor", "ridge", skops_model(forest),
     "it holds RandomForestRegressor, not a StandardScaler and a Ridge in a pipeline"),
    ("skops-looping-tree", "ridge", skops_model(looping_tree, "decision-tree"),
     "a decision tree's child indices do not form a tree"),
    ("skops-untrusted-type", "ridge", skops_model(system_call),
     "it contains untrusted types"),
    # manifests of every wrong shape
    ("manifest-not-json", "lightgbm", write_manifest(b"{not json"),
     "is not a valid predictor manifest: Expecting property name"),
    ("manifest-not-utf8", "lightgbm", write_manifest(b'{"format": "\xff\xfe"}'),
     "is not a valid predictor manifest: not UTF-8"),
    ("manifest-list", "lightgbm", write_manifest(b"[1, 2]"),
     "a JSON object is expected, not list"),
    ("manifest-huge", "lightgbm", write_manifest(b" " * (17 * 2**20) + b"{}"),
     "bytes, more than the 16777216 a manifest may have"),
    ("manifest-nested", "lightgbm", write_manifest(b"[" * 100_000 + b"]" * 100_000),
     "nested too deeply"),
    ("format-unknown", "lightgbm", edit_manifest(deep("format", "lenna-predictor/9")),
     "format 'lenna-predictor/9'; expected lenna-predictor/2"),
    ("no-files", "lightgbm", edit_manifest(drop("files")), "manifest: no files"),
    ("no-estimator", "lightgbm", edit_manifest(drop("estimator")), "manifest: no estimator"),
    ("files-list", "lightgbm", edit_manifest(deep("files", ["model.txt"])),
     "files must be an object"),
    ("files-entry-string", "lightgbm", raw_manifest(files_entry({"model.txt": "abc"})),
     "files.model.txt must be an object with a sha256 and a size"),
    ("file-outside", "lightgbm", edit_manifest(files_entry({"../model.txt": {}})),
     "file name '../model.txt' is not a plain relative path inside the bundle"),
    ("file-absolute", "lightgbm", edit_manifest(files_entry({"/etc/passwd": {}})),
     "file name '/etc/passwd' is not a plain relative path"),
    ("featurizers-object", "lightgbm", edit_manifest(deep("featurizers", {"name": "x"})),
     "featurizers must be a list of objects with a name and a version"),
    ("featurizer-string", "lightgbm", edit_manifest(deep("featurizers", ["layer-stats"])),
     "featurizers must be a list of objects with a name and a version"),
    ("estimator-string", "lightgbm", edit_manifest(deep("estimator", "lightgbm")),
     "estimator must be an object with a name and params"),
    ("params-list", "lightgbm",
     edit_manifest(deep("estimator", {"name": "lightgbm", "params": []})),
     "estimator must be an object with a name and params"),
    ("feature-names-numbers", "lightgbm", edit_manifest(deep("feature_names", [1, 2])),
     "feature_names must be a list of strings"),
    ("workload-unknown-key", "lightgbm", edit_manifest(deep("workload", {"batch": 1})),
     "workload must be an object with some of batch_size, mode, optimizer, dtype"),
    ("target-string", "lightgbm", edit_manifest(deep("target", "onnxruntime")),
     "target must be an object"),
    ("checksum-number", "lightgbm", raw_manifest(deep("checksum", 5)),
     "checksum must be a string"),
    ("signature-malformed", "lightgbm", edit_manifest(deep("signature", "abc")),
     "signature must be an object with algorithm hmac-sha256 and a value"),
    ("estimator-unknown", "lightgbm",
     edit_manifest(deep("estimator", {"name": "no-such", "params": {}})), "no-such"),
    ("params-unknown", "lightgbm",
     edit_manifest(deep("estimator", {"name": "lightgbm", "params": {"bogus": 1}})),
     "cannot load estimator lightgbm from"),
]


@pytest.mark.parametrize(("bundle_name", "mutate", "fragment"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_a_damaged_or_forged_bundle_is_refused_in_one_line(registry, bundle_of, monkeypatch,
                                                           bundle_name, mutate, fragment):
    monkeypatch.delenv(KEY, raising=False)
    bundle = bundle_of(bundle_name)
    mutate(bundle)
    with pytest.raises(LennaError) as info:
        load_predictor(bundle, registry)
    message = str(info.value)
    assert fragment in message and "\n" not in message, message
    assert len(message) < 400, message


def test_the_table_covers_every_kind_of_damage():
    assert len(CASES) >= 35 and len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("name", ["lightgbm", "ridge", "ensemble"])
def test_an_intact_bundle_loads_and_predicts(registry, saved, monkeypatch, name):
    monkeypatch.delenv(KEY, raising=False)
    bundle = saved[0] / name
    predictor = load_predictor(bundle, registry)
    listed = predictor.manifest["files"]
    assert {n: e["size"] for n, e in listed.items()} == {
        p.relative_to(bundle).as_posix(): p.stat().st_size for p in bundle.rglob("*")
        if p.is_file() and p.name != "predictor.json"}
    architecture = Architecture.from_dict(json.loads((saved[0] / "arch.json").read_text()))
    assert 0 < predictor.predict_seconds(Workload(architecture)) < 1


def test_a_bundle_saved_before_sizes_were_recorded_still_loads(registry, bundle_of,
                                                               monkeypatch):
    monkeypatch.delenv(KEY, raising=False)
    bundle = bundle_of("ridge")
    manifest = manifest_of(bundle)
    manifest["format"] = "lenna-predictor/1"
    manifest["files"] = {name: entry["sha256"] for name, entry in manifest["files"].items()}
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    manifest["checksum"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    (bundle / "predictor.json").write_text(json.dumps(manifest))
    assert load_predictor(bundle, registry).manifest["format"] == "lenna-predictor/1"
    flip_byte("model.skops")(bundle)
    with pytest.raises(PredictorError, match="model.skops has been modified"):
        load_predictor(bundle, registry)


# --- signatures ---------------------------------------------------------------------------


@pytest.fixture
def signed(registry, saved, tmp_path, monkeypatch):
    """A bundle saved with LENNA_PREDICTOR_KEY=alpha (the saved ridge bundle re-saved)."""
    monkeypatch.delenv(KEY, raising=False)
    original = load_predictor(saved[0] / "ridge", registry)
    monkeypatch.setenv(KEY, "alpha")
    save_predictor(tmp_path / "signed", original.estimator, original.featurizers,
                   original.feature_names, {k: original.manifest[k] for k in (
                       "workload", "source", "target", "training_data", "metrics")})
    return tmp_path / "signed"


def strip_signature(manifest: dict) -> None:
    del manifest["signature"]


SIGNATURE_CASES = [
    ("unsigned-with-key", "ridge", None, "alpha",
     "is not signed, and LENNA_PREDICTOR_KEY is set"),
    ("signed-wrong-key", "signed", None, "beta",
     "was not signed with the key in LENNA_PREDICTOR_KEY (signature mismatch)"),
    ("signed-without-key", "signed", None, None,
     "is signed; set LENNA_PREDICTOR_KEY to the key it was signed with"),
    ("signed-then-edited", "signed", edit_manifest(deep("metrics", {"r2": 1.0})), "alpha",
     "signature mismatch"),
    ("signature-stripped", "signed", edit_manifest(strip_signature), "alpha", "is not signed"),
    ("model-replaced-resealed", "signed", skops_model(forest), "alpha", "signature mismatch"),
    ("empty-key", "signed", None, "", "LENNA_PREDICTOR_KEY is set but empty"),
]


@pytest.mark.parametrize(("which", "mutate", "key", "fragment"),
                         [case[1:] for case in SIGNATURE_CASES],
                         ids=[case[0] for case in SIGNATURE_CASES])
def test_signatures_prove_origin(registry, signed, bundle_of, monkeypatch, which, mutate, key,
                                 fragment):
    bundle = signed if which == "signed" else bundle_of(which)
    if mutate is not None:
        mutate(bundle)
    if key is None:
        monkeypatch.delenv(KEY, raising=False)
    else:
        monkeypatch.setenv(KEY, key)
    with pytest.raises(PredictorError) as info:
        load_predictor(bundle, registry)
    assert fragment in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_a_signed_bundle_loads_with_its_key(registry, signed, monkeypatch):
    monkeypatch.setenv(KEY, "alpha")
    manifest = load_predictor(signed, registry).manifest
    assert manifest["signature"]["algorithm"] == "hmac-sha256"
    assert len(manifest["signature"]["value"]) == 64


# --- the parser runs in a child first -------------------------------------------------------


def _crashing_model(saved, change) -> bytes:
    return change((saved[0] / "lightgbm" / "model.txt").read_text()).encode()


@pytest.mark.parametrize(("change", "signal_name"), [
    (lambda t: t.replace("[num_threads: 1]", "garbage"), "SIGSEGV"),
    (tree_edit(0, "leaf_value", lambda v: v[:1]), "SIGABRT"),
], ids=["garbled-parameter", "short-array"])
def test_a_crash_in_lightgbm_s_parser_kills_only_the_child(saved, change, signal_name):
    """Text that LightGBM itself dies on, given straight to the child, skipping the Python
    check: the crash is one line naming the signal, and this process lives on."""
    import lightgbm

    from lenna_lightgbm.model_text import parse_in_child, structure_problem

    data = _crashing_model(saved, change)
    assert structure_problem(data.decode()) is not None
    assert parse_in_child(data, lightgbm.basic._LIB._name) == \
        f"the parser crashed ({signal_name})"
    assert parse_in_child((saved[0] / "lightgbm" / "model.txt").read_bytes(),
                          lightgbm.basic._LIB._name) is None


# --- saving: nothing half-written survives a failure ------------------------------------------


SAVE_UNDER_FILE_LIMIT = """
import resource, sys
from pathlib import Path
from lenna_core.errors import LennaError
from lenna_core.learning.predictor import load_predictor, save_predictor
from lenna_core.plugins.registry import make_registry

bundle = Path(sys.argv[1])
loaded = load_predictor(bundle, make_registry())
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    save_predictor(bundle, loaded.estimator, loaded.featurizers, loaded.feature_names,
                   {k: loaded.manifest[k] for k in ("workload", "source", "target")})
except LennaError as exc:
    print(exc)
"""


def test_a_full_disk_while_saving_leaves_the_earlier_bundle(registry, bundle_of, monkeypatch):
    """The model file exceeds a 4 KiB file-size limit (as on a full disk): one line, no
    staging directory left, and the bundle there before loads as it was."""
    monkeypatch.delenv(KEY, raising=False)
    bundle = bundle_of("lightgbm")
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    result = subprocess.run([sys.executable, "-c", SAVE_UNDER_FILE_LIMIT, str(bundle)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"cannot save the predictor to {bundle}: File too large"
    assert sorted(p.name for p in bundle.parent.iterdir()) == ["bundle"]
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before
    load_predictor(bundle, registry)


class FailingSave:
    """A fitted estimator whose save writes a file and then fails, as a plugin might."""

    name = "ridge"

    def get_params(self, deep=False):
        return {}

    def save(self, directory: Path) -> None:
        (directory / "model.skops").write_bytes(b"half")
        raise RuntimeError("the plugin failed while saving")


def test_an_estimator_failing_to_save_leaves_the_earlier_bundle(registry, bundle_of,
                                                                monkeypatch):
    monkeypatch.delenv(KEY, raising=False)
    bundle = bundle_of("ridge")
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    with pytest.raises(PluginError, match="failed in save: RuntimeError: the plugin failed "
                                          "while saving"):
        save_predictor(bundle, FailingSave(), [], [], {})
    assert sorted(p.name for p in bundle.parent.iterdir()) == ["bundle"]
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before


def test_an_empty_key_refuses_to_save_before_writing(bundle_of, monkeypatch):
    bundle = bundle_of("ridge")
    monkeypatch.setenv(KEY, "")
    with pytest.raises(LennaError, match="LENNA_PREDICTOR_KEY is set but empty"):
        save_predictor(bundle.parent / "new", FailingSave(), [], [], {})
    assert sorted(p.name for p in bundle.parent.iterdir()) == ["bundle"]


# --- the same refusals through the CLI: one line, exit 2 --------------------------------------


CLI_CASES = {
    "model-edited": ("lightgbm", flip_byte("model.txt"), {}, "model.txt has been modified"),
    "symlink-out": ("lightgbm", symlink("model.txt", "model.txt", replace=True, outside=True),
                    {}, "holds a symlink, model.txt"),
    "lgb-garbled-parameter": (
        "lightgbm", model_text(lambda t: t.replace("[num_threads: 1]", "garbage")), {},
        "model.txt in bundle"),
    "lgb-truncated": ("lightgbm", model_text(lambda t: t[:len(t) // 3]), {}, "is malformed"),
    "unsigned-with-key": ("ridge", None, {KEY: "alpha"}, "is not signed"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_lenna_predict_refuses_a_bad_bundle_in_one_line(saved, bundle_of, case):
    name, mutate, env, fragment = CLI_CASES[case]
    bundle = bundle_of(name)
    if mutate is not None:
        mutate(bundle)
    result = run_lenna("predict", "--predictor", str(bundle), "--arch",
                       str(saved[0] / "arch.json"), env=env)
    assert_one_line_error(result, fragment)
