"""One home per concept: the shared decoder, the shared scoring, the server's evaluation
against model.onnx, the browser wheel's contents and the imports each room may make."""
from __future__ import annotations

import ast
import io
import zipfile
from array import array
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from api_helpers import Harness
from experiments.server import ROOT

ROOMS = ("browser_py", "server", "export", "experiments", "extensions")


def _photo_with_exif_rotation() -> tuple[bytes, np.ndarray]:
    """A JPEG stored sideways whose EXIF says 'rotate 90 to display', and the upright image."""
    upright = np.zeros((40, 20, 3), np.uint8)
    upright[:10] = (255, 0, 0)          # a red band at the top of the upright image
    stored = np.rot90(upright, k=1)      # the camera stored it sideways (20 high, 40 wide)
    exif = Image.Exif()
    exif[0x0112] = 6                     # orientation: rotate 90 CW to display
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(stored)).save(buf, format="JPEG", exif=exif, quality=95)
    return buf.getvalue(), upright


def test_every_cpython_side_decodes_with_exif_orientation(tmp_path):
    from browser_py.native.images import decode
    from browser_py.preprocess import InputSpec, pixels_pillow
    from export.datasets import image_folder
    from server.evaluation import read_validation_upload

    data, upright = _photo_with_exif_rotation()
    shown = decode(data, "RGB")
    assert shown.shape == (40, 20, 3) and shown[:8, :, 0].mean() > 200 and shown[-8:, :, 0].mean() < 60
    client = np.frombuffer(pixels_pillow(data, InputSpec("RGB", 20, 40)), np.float32).reshape(3, 40, 20)
    zipped = tmp_path / "photos.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("photos/a/1.jpg", data)
        zf.writestr("photos/b/2.jpg", data)
    dataset = image_folder(zipped, color="RGB", size=(20, 40))
    manifest = {"classes": ["a", "b"], "input": {"color": "RGB", "size": [20, 40]}}
    server_pixels, _ = read_validation_upload(zipped.read_bytes(), manifest)
    np.testing.assert_array_equal(dataset.images[0].transpose(2, 0, 1).astype(np.float32), client)
    np.testing.assert_array_equal(server_pixels[0], client)


def test_the_server_scores_like_model_onnx_and_like_the_client(tmp_path):
    """Evaluation through inference sessions (features once, head per version) gives the
    logits of the version's exported model.onnx, and the scores the client computes."""
    import onnxruntime as ort

    from browser_py.bundle_source import DirectoryBundle
    from browser_py.native.trainer import NativeTrainer
    from browser_py.trainer import LocalTrainer
    from export.datasets import sklearn_digits
    from export.download import to_onnx

    h = Harness(tmp_path)
    task = h.admin("POST", "/api/admin/tasks", json={"title": "t", "config": {"classes": [str(d) for d in range(10)]}}).json
    h.ext.tasks.wait_for_build(task["id"])
    data = sklearn_digits()
    buf = io.BytesIO()
    np.savez(buf, images=data.images[:120], labels=data.labels[:120])
    assert h.admin("PUT", f"/api/admin/tasks/{task['id']}/validation", data=buf.getvalue()).status_code == 200
    assert h.ext.evaluator.wait_idle(60)
    result = h.ext.evaluator.evaluate(task["id"], 0)
    manifest = h.ext.tasks.manifest(task["id"])
    params = h.ext.tasks.params.get(h.ext.tasks.version(task["id"], 0).params_sha256)
    session = ort.InferenceSession(to_onnx(manifest, params), providers=["CPUExecutionProvider"])
    pixels = data.images[:120].astype(np.float32)[:, None]
    logits = session.run(None, {"pixels": pixels})[0]
    assert result["accuracy"] == pytest.approx(float((logits.argmax(1) == data.labels[:120]).mean()))

    import asyncio

    async def client_scores():
        backend = await NativeTrainer.create(DirectoryBundle(h.ext.tasks.bundle_dir(task["id"])))
        await backend.set_parameters(array("f", params.tobytes()))
        return await LocalTrainer(backend).evaluate([array("f", p.tobytes()) for p in pixels],
                                                    data.labels[:120].tolist(), 10)

    client = asyncio.run(client_scores())
    assert client["confusion"] == result["confusion"]
    assert client["loss"] == pytest.approx(result["loss"], rel=1e-4)


def test_the_browser_wheel_carries_only_what_runs_in_the_browser():
    from server.client_wheel import build_wheel

    names = zipfile.ZipFile(io.BytesIO(build_wheel())).namelist()
    modules = sorted(n for n in names if n.endswith(".py"))
    assert modules and all(n.startswith("browser_py/") for n in modules)
    assert not [n for n in modules if n.startswith("browser_py/native/")], "CPython twins stay out"
    for name in modules:
        tree = ast.parse(zipfile.ZipFile(io.BytesIO(build_wheel())).read(name))
        top = {a.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for a in node.names}
        top |= {(node.module or "").split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom)
                and node.level == 0}
        assert not top & {"numpy", "PIL", "onnxruntime", "argparse", "click", "export", "server", "experiments"}, name


# Which room may import which (imports anywhere in a module, including inside functions).
FORBIDDEN = {
    "browser_py": {"server", "export", "experiments", "extensions", "flask"},
    "export": {"server", "experiments", "flask"},
    "server": {"experiments"},
    "extensions": {"server", "export", "experiments"},
}
# browser_py's core (outside native/) must not reach for CPython-only libraries at module level.
CORE_MODULE_LEVEL = {"numpy", "PIL", "onnxruntime", "torch"}
# What server may take from the client: its definitions of decoding, scoring and update encodings.
SERVER_FROM_CLIENT = {"browser_py.native.images", "browser_py.scoring", "browser_py.update_encoding"}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import in a file."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module, id(node) in top))
    return out


def test_forbidden_imports_between_rooms():
    problems = []
    for room in ROOMS:
        for path in (ROOT / room).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            for module, module_level in _imports(path):
                first = module.split(".")[0]
                if first in FORBIDDEN.get(room, set()):
                    problems.append(f"{rel} imports {module}")
                if room == "server" and first == "browser_py" and module not in SERVER_FROM_CLIENT:
                    problems.append(f"{rel} imports {module} (server may use only {sorted(SERVER_FROM_CLIENT)})")
                if (room == "browser_py" and "/native/" not in rel and module_level
                        and first in CORE_MODULE_LEVEL):
                    problems.append(f"{rel} imports {module} at module level (browser core)")
            if room == "server" and "/strategies/" in rel:
                for module, _ in _imports(path):
                    if module.split(".")[0] not in {"numpy", "pydantic", "__future__", "abc", "dataclasses",
                                                     "typing", "functools", "server"}:
                        problems.append(f"{rel} imports {module} (strategies are pure maths)")
    assert problems == []
