"""Model bundles: they load and train in CPython, match PyTorch, and refuse bad input."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from array import array
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from browser_py.bundle_source import DirectoryBundle
from browser_py.native.trainer import NativeTrainer
from export import BundleError, build_bundle, get_model, load_manifest
from export.datasets import sklearn_digits

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def mobilenet_head(bundle_root) -> Path:
    out = bundle_root / "mobilenet-head"
    build_bundle("mobilenet_v2", ["cat", "dog", "bird"], out, lr=0.01, train_blocks=0)
    return out


@pytest.fixture(scope="module")
def mobilenet_block(bundle_root) -> Path:
    out = bundle_root / "mobilenet-block"
    build_bundle("mobilenet_v2", ["cat", "dog"], out, lr=0.01, train_blocks=1)
    return out


@pytest.fixture(scope="module")
def niid_bench_cnn(bundle_root) -> Path:
    out = bundle_root / "niid-bench-cnn"
    build_bundle("niid_bench_cnn", [str(c) for c in range(10)], out, lr=0.01)
    return out


@pytest.fixture(params=["digits", "mobilenet-head", "mobilenet-block", "niid-bench-cnn"])
def any_bundle(request, digits_bundle, mobilenet_head, mobilenet_block, niid_bench_cnn) -> Path:
    return {"digits": digits_bundle, "mobilenet-head": mobilenet_head, "mobilenet-block": mobilenet_block,
            "niid-bench-cnn": niid_bench_cnn}[request.param]


def test_niid_bench_cnn_has_the_papers_layers(niid_bench_cnn):
    # conv 1->6 5x5, conv 6->16 5x5, 256->120->84->10 (LeNet-5 shaped, as NIID-Bench trains)
    expected = (1 * 6 * 25 + 6) + (6 * 16 * 25 + 16) + (256 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    assert load_manifest(niid_bench_cnn)["num_parameters"] == expected == 44426


def trainer(bundle: Path) -> NativeTrainer:
    return asyncio.run(NativeTrainer.create(DirectoryBundle(bundle)))


def run(coro):
    return asyncio.run(coro)


def features_of(bundle: Path, pixels: np.ndarray) -> np.ndarray:
    manifest = load_manifest(bundle)
    if manifest["features"] is None:
        return pixels
    session = ort.InferenceSession(str(bundle / "features.onnx"))
    return session.run(None, {"pixels": pixels})[0]


def full_model(bundle: Path, pixels: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(bundle / "model.onnx")).run(None, {"pixels": pixels})[0]


def random_pixels(manifest: dict, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((n, *manifest["input"]["shape"])) * 255).astype(np.float32)


def test_manifest_describes_every_file(any_bundle):
    manifest = load_manifest(any_bundle, verify=True)
    names = set(manifest["files"])
    assert {"model.onnx", "training_model.onnx", "eval_model.onnx", "optimizer_model.onnx",
            "checkpoint", "parameters.f32"} <= names
    assert ("features.onnx" in names) == (manifest["features"] is not None)
    offsets = [p["offset"] for p in manifest["parameters"]]
    assert offsets == sorted(offsets) and offsets[0] == 0
    assert sum(p["size"] for p in manifest["parameters"]) == manifest["num_parameters"]
    assert (any_bundle / "parameters.f32").stat().st_size == 4 * manifest["num_parameters"]


def test_layout_matches_contiguous_parameters(any_bundle):
    """Each named checkpoint parameter sits at its manifest offset in the flat vector."""
    from onnxruntime.training.api import CheckpointState

    manifest = load_manifest(any_bundle)
    flat = np.fromfile(any_bundle / "parameters.f32", dtype="<f4")
    t = trainer(any_bundle)
    assert np.array_equal(np.frombuffer(run(t.get_parameters()), np.float32), flat)
    state = CheckpointState.load_checkpoint(str(any_bundle / "checkpoint"))
    for p in manifest["parameters"]:
        stored = np.asarray(state.parameters[p["name"]].data).ravel()
        assert np.array_equal(flat[p["offset"]:p["offset"] + p["size"]], stored), p["name"]


def test_model_onnx_matches_pytorch(any_bundle):
    """Rebuild the PyTorch model, load parameters.f32 by the manifest's names, compare."""
    manifest = load_manifest(any_bundle)
    torch.manual_seed(0)
    split = get_model(manifest["model"]).split(len(manifest["classes"]), manifest["training"]["train_blocks"])
    flat = torch.from_numpy(np.fromfile(any_bundle / "parameters.f32", dtype="<f4"))
    state = split.head.state_dict()
    for p in manifest["parameters"]:
        state[p["name"]] = flat[p["offset"]:p["offset"] + p["size"]].reshape(p["shape"])
    split.head.load_state_dict(state)
    pixels = random_pixels(manifest, 4)
    with torch.no_grad():
        x = torch.from_numpy(pixels)
        expected = split.head(split.features(x) if split.features is not None else x).numpy()
    np.testing.assert_allclose(full_model(any_bundle, pixels), expected, atol=1e-4, rtol=0)


def test_features_then_head_equals_model(any_bundle):
    manifest = load_manifest(any_bundle)
    pixels = random_pixels(manifest, 3, seed=1)
    feats = features_of(any_bundle, pixels).astype(np.float32)
    _, logits = run(trainer(any_bundle).eval_step(array("f", feats.tobytes()), [0, 1, 0]))
    logits = np.frombuffer(logits, np.float32).reshape(3, -1)
    np.testing.assert_allclose(logits, full_model(any_bundle, pixels), atol=1e-4, rtol=0)


def test_bundle_trains_and_loss_goes_down(any_bundle):
    manifest = load_manifest(any_bundle)
    k = len(manifest["classes"])
    if manifest["input"]["shape"] == [1, 28, 28]:  # grayscale models learn real digits
        data = sklearn_digits()
        pixels = data.images[:64, None].astype(np.float32)
        labels = data.labels[:64].tolist()
    else:  # separable synthetic images: class c is brighter in channel c
        rng = np.random.default_rng(3)
        labels = [i % k for i in range(16)]
        pixels = (rng.random((16, *manifest["input"]["shape"])) * 80).astype(np.float32)
        for i, c in enumerate(labels):
            pixels[i, c] += 150
    feats = array("f", features_of(any_bundle, pixels).astype(np.float32).tobytes())
    t = trainer(any_bundle)
    losses = [run(t.train_step(feats, labels)) for _ in range(15)]
    assert losses[-1] < 0.5 * losses[0], losses


def test_learning_rate_is_baked_into_the_optimizer(bundle_root, digits_bundle):
    """Adam's first step moves each weight by about lr, so 10x the rate gives a 10x step."""
    slow = bundle_root / "digits-lr0.001"
    build_bundle("digits_cnn", [str(d) for d in range(10)], slow, lr=0.001)
    data = sklearn_digits()
    x = array("f", data.images[:32, None].astype(np.float32).tobytes())
    y = data.labels[:32].tolist()
    steps = []
    for bundle in (slow, digits_bundle):
        t = trainer(bundle)
        before = np.frombuffer(run(t.get_parameters()), np.float32).copy()
        run(t.train_step(x, y))
        steps.append(np.frombuffer(run(t.get_parameters()), np.float32) - before)
    assert np.array_equal(np.fromfile(slow / "parameters.f32", "<f4"), np.fromfile(digits_bundle / "parameters.f32", "<f4"))
    ratio = np.median(np.abs(steps[1][steps[0] != 0]) / np.abs(steps[0][steps[0] != 0]))
    assert ratio == pytest.approx(10, rel=0.02)


def test_same_arguments_give_the_same_initial_parameters(bundle_root, digits_bundle):
    again = bundle_root / "digits-again"
    build_bundle("digits_cnn", [str(d) for d in range(10)], again, lr=0.01)
    assert (again / "parameters.f32").read_bytes() == (digits_bundle / "parameters.f32").read_bytes()


@pytest.mark.parametrize("kwargs, message", [
    ({"model": "resnet_9000"}, "unknown model"),
    ({"classes": []}, "at least two"),
    ({"classes": ["cat", " "]}, "must not be empty"),
    ({"classes": ["cat", "dog", "cat"]}, "duplicate class names: cat"),
    ({"lr": 0.0}, "positive"),
    ({"lr": -1.0}, "positive"),
    ({"lr": float("nan")}, "positive"),
    ({"model": "mobilenet_v2", "train_blocks": 19}, "outside 0..18"),
    ({"train_blocks": 1}, "outside 0..0"),
    ({"train_blocks": -1}, "outside"),
])
def test_bad_arguments_are_refused_without_leftovers(tmp_path, kwargs, message):
    args = {"model": "digits_cnn", "classes": ["a", "b"], "lr": 0.01, "train_blocks": 0} | kwargs
    with pytest.raises(BundleError, match=message):
        build_bundle(args.pop("model"), args.pop("classes"), tmp_path / "out", **args)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(BundleError, match="cannot write"):
        build_bundle("digits_cnn", ["a", "b"], blocker / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_existing_bundle_is_not_overwritten_without_force(tmp_path, digits_bundle):
    out = tmp_path / "b"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(BundleError, match="already exists"):
        build_bundle("digits_cnn", ["a", "b"], out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_failure_midway_leaves_no_partial_bundle(tmp_path, monkeypatch):
    import export.bundle as bundle_mod

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash while generating artifacts")

    monkeypatch.setattr(bundle_mod, "_make_artifacts", boom)
    with pytest.raises(RuntimeError, match="simulated"):
        build_bundle("digits_cnn", ["a", "b"], tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_cli_builds_and_reports(tmp_path):
    out = tmp_path / "pets"
    proc = subprocess.run([sys.executable, "-m", "server.cli", "export", "--model", "digits_cnn",
                           "--classes", "yes,no", "--lr", "0.05", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["classes"] == ["yes", "no"] and summary["trainable_parameters"] > 0
    assert load_manifest(out, verify=True)["training"]["lr"] == 0.05


def test_cli_error_is_one_clear_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "server.cli", "export", "--model", "digits_cnn",
                           "--classes", "a,a", "--out", str(tmp_path / "x")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "webfl export: error: duplicate class names: a"
    assert not (tmp_path / "x").exists()


def test_export_help_lists_models():
    proc = subprocess.run([sys.executable, "-m", "server.cli", "export", "--help"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0
    assert "mobilenet_v2" in proc.stdout and "digits_cnn" in proc.stdout and "--train-blocks" in proc.stdout


def test_steps_named_by_sample_index_equal_steps_on_gathered_batches(digits_bundle):
    """A fit copies the training set to the backend once and names each batch's samples by
    index; natively that equals stepping on the gathered batches, and bad sets are refused."""
    from browser_py.trainer import TrainerError

    data = sklearn_digits()
    xs = [array("f", im[None].astype(np.float32).tobytes()) for im in data.images[:20]]
    ys = data.labels[:20].tolist()
    parts = [[3, 1, 4, 15, 9], [2, 6, 5], [19, 0, 8, 7]]
    gathered, indexed = trainer(digits_bundle), trainer(digits_bundle)
    expected = []
    for part in parts:
        x = array("f")
        for i in part:
            x.extend(xs[i])
        expected.append(run(gathered.train_step(x, [ys[i] for i in part])))
    assert run(indexed.train_steps(indexed.samples(xs, ys), parts)) == expected
    assert run(indexed.get_parameters()) == run(gathered.get_parameters())
    with pytest.raises(TrainerError, match="sample 1 has 3 input values"):
        indexed.samples([xs[0], array("f", [1, 2, 3])], [0, 1])
    with pytest.raises(TrainerError, match="as many"):
        indexed.samples(xs, ys[:-1])


def test_bundle_files_are_read_once_checked_and_a_damaged_one_is_refused(tmp_path, digits_bundle):
    """Reads asked for side by side (the page's start prefetches files while others wait for
    them) fetch each file once; every file is checked against its sha256; a damaged file is
    refused, and read again (not remembered) once it is whole."""
    import shutil

    from browser_py.bundle_source import BundleIntegrityError

    copy = tmp_path / "bundle"
    shutil.copytree(digits_bundle, copy)

    fetched: list[str] = []

    class Counted(DirectoryBundle):
        async def _read(self, name: str) -> bytes:
            fetched.append(name)
            await asyncio.sleep(0.01)  # on its way for a moment, as over the network
            return await super()._read(name)

    async def scenario():
        source = Counted(copy)
        source.prefetch(["checkpoint", "training_model.onnx"])
        both = await asyncio.gather(source.read("checkpoint"), source.read("checkpoint"),
                                    source.read("training_model.onnx"))
        assert both[0] == both[1] == (copy / "checkpoint").read_bytes()
        assert sorted(fetched) == ["checkpoint", "manifest.json", "training_model.onnx"]
        whole = (copy / "eval_model.onnx").read_bytes()
        (copy / "eval_model.onnx").write_bytes(whole[:-1] + bytes([whole[-1] ^ 1]))
        source.prefetch(["eval_model.onnx"])  # a prefetch that fails says so to its reader
        with pytest.raises(BundleIntegrityError, match="eval_model.onnx"):
            await source.read("eval_model.onnx")
        (copy / "eval_model.onnx").write_bytes(whole)
        assert await source.read("eval_model.onnx") == whole

    asyncio.run(scenario())


def test_a_name_the_manifest_does_not_list_is_refused_without_a_request(digits_bundle):
    """Prefetching or reading a file the bundle does not have fails at once, naming it, and
    nothing is fetched for it (start-up once prefetched option names instead of file names,
    and each went to the server as a request that could only fail)."""
    fetched: list[str] = []

    class Counted(DirectoryBundle):
        async def _read(self, name: str) -> bytes:
            fetched.append(name)
            return await super()._read(name)

    async def scenario():
        source = Counted(digits_bundle)
        await source.load_manifest()
        with pytest.raises(KeyError, match="checkpointState is not a file of this bundle"):
            source.prefetch(["checkpoint", "checkpointState"])
        with pytest.raises(KeyError, match="trainModel"):
            await source.read("trainModel")
        assert await source.read("checkpoint") == (digits_bundle / "checkpoint").read_bytes()
        assert fetched == ["manifest.json", "checkpoint"]

    asyncio.run(scenario())


def test_the_browser_trainer_prefetches_files_the_bundle_has(digits_bundle):
    """The training files the browser's trainer fetches side by side are the bundle's own."""
    from browser_py.ort_web import TRAINING_FILES

    assert set(TRAINING_FILES.values()) <= set(load_manifest(digits_bundle)["files"])
