"""Server-side evaluation of global versions on an admin's validation set (CPU onnxruntime).

The validation images are preprocessed once (decode, convert, resize, as every client
does), passed through the bundle's frozen feature extractor once, and cached; each
version then only runs the head, so evaluating a version costs milliseconds to seconds.
Work runs on one background thread; when versions arrive faster than they can be
evaluated, the newest waiting version of a task is evaluated next and older waiting
ones are skipped (the dashboard wants the present, not a backlog).
"""
from __future__ import annotations

import asyncio
import io
import json
import os
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np

from export.datasets import DatasetError, image_folder

from .errors import APIError
from .tasks import TaskStore

MAX_VALIDATION_IMAGES = 20000


class ValidationSetError(APIError):
    status = 400


def preprocess(images: np.ndarray, manifest: dict) -> np.ndarray:
    """uint8 images (N,H,W) or (N,H,W,3) -> float32 NCHW pixels in [0, 255]."""
    from PIL import Image

    spec = manifest["input"]
    size = tuple(spec["size"])
    out = []
    for im in images:
        pil = Image.fromarray(im).convert(spec["color"])
        if pil.size != size:
            pil = pil.resize(size, Image.BILINEAR)
        arr = np.asarray(pil, dtype=np.float32)
        out.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
    return np.stack(out)


def read_validation_upload(data: bytes, manifest: dict) -> tuple[np.ndarray, np.ndarray]:
    """An ImageFolder zip (class folders named like the task's classes) or an .npz with
    ``images`` (uint8) and ``labels`` (class indices). Returns pixels and labels."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ValidationSetError("upload a zip with one folder per class, or an .npz with images and labels")
    if _is_npz(io.BytesIO(data)):
        return _from_npz(data, manifest)
    classes = manifest["classes"]
    with tempfile.NamedTemporaryFile(suffix=".zip") as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            ds = image_folder(tmp.name, color=manifest["input"]["color"], size=tuple(manifest["input"]["size"]))
        except DatasetError as exc:
            raise ValidationSetError(f"cannot read the validation set: {exc}") from None
    unknown = sorted(set(ds.classes) - set(classes))
    if unknown:
        raise ValidationSetError("the validation set has folders that are not classes of this task: "
                                 + ", ".join(unknown), {"classes": classes})
    labels = np.array([classes.index(ds.classes[i]) for i in ds.labels], dtype=np.int64)
    return preprocess(ds.images, manifest), labels


def _is_npz(archive: io.BytesIO) -> bool:
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
    return {"images.npy", "labels.npy"} <= names


def _from_npz(data: bytes, manifest: dict) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            images, labels = npz["images"], npz["labels"]
    except (ValueError, OSError) as exc:
        raise ValidationSetError(f"cannot read the .npz: {exc}") from None
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or len(images) != len(labels):
        raise ValidationSetError("the .npz needs uint8 images (N,H,W) or (N,H,W,3) and N labels")
    if labels.min() < 0 or labels.max() >= len(manifest["classes"]):
        raise ValidationSetError(f"labels must be class indices from 0 to {len(manifest['classes']) - 1}")
    return preprocess(images, manifest), labels.astype(np.int64)


class Evaluator:
    def __init__(self, tasks: TaskStore, data_dir: Path) -> None:
        self.tasks = tasks
        self.root = data_dir / "validation"
        self.root.mkdir(parents=True, exist_ok=True)
        self._wanted: dict[str, int] = {}  # task -> newest version waiting
        self._cond = threading.Condition()
        self._cache: dict[str, tuple[str, object, np.ndarray, np.ndarray]] = {}
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._busy = False

    def start(self) -> None:
        """Run evaluations on a background thread (the process that does background work)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="evaluator", daemon=True)
            self._thread.start()

    def path(self, task_id: str) -> Path:
        return self.root / f"{task_id}.npz"

    def has_validation(self, task_id: str) -> bool:
        return self.path(task_id).exists()

    def store_validation(self, task_id: str, data: bytes) -> dict:
        manifest = self.tasks.manifest(task_id)
        pixels, labels = read_validation_upload(data, manifest)
        if len(labels) == 0:
            raise ValidationSetError("the validation set is empty")
        if len(labels) > MAX_VALIDATION_IMAGES:
            raise ValidationSetError(f"at most {MAX_VALIDATION_IMAGES} validation images, got {len(labels)}")
        tmp = self.path(task_id).with_suffix(".part.npz")
        np.savez(tmp, pixels=pixels, labels=labels)
        os.replace(tmp, self.path(task_id))
        self._cache.pop(task_id, None)
        self.schedule(task_id, self.tasks.current_version(task_id).version)
        counts = np.bincount(labels, minlength=len(manifest["classes"])).tolist()
        return {"samples": int(len(labels)), "per_class": dict(zip(manifest["classes"], counts))}

    def schedule(self, task_id: str, version: int) -> None:
        if not self.has_validation(task_id):
            return
        with self._cond:
            self._wanted[task_id] = max(version, self._wanted.get(task_id, -1))
            self._cond.notify()

    def wait_idle(self, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._wanted or self._busy:
                if not self._cond.wait(max(0.0, deadline - time.monotonic())):
                    return False
        return True

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._wanted and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                task_id, version = self._wanted.popitem()
                self._busy = True
            try:
                self.evaluate(task_id, version)
            except Exception as exc:  # keep the worker alive; say what failed
                print(f"webfl: evaluation of task {task_id} version {version} failed: {exc}", flush=True)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _prepared(self, task_id: str):
        """(bundle sha, trainer, features, labels), computing features once per bundle."""
        from browser_py.bundle_source import DirectoryBundle
        from browser_py.ort_native import NativeTrainer
        import onnxruntime as ort

        task = self.tasks.get(task_id)
        cached = self._cache.get(task_id)
        if cached is not None and cached[0] == task.bundle_sha256:
            return cached
        bundle = self.tasks.bundle_dir(task_id)
        manifest = self.tasks.manifest(task_id)
        with np.load(self.path(task_id)) as data:
            pixels, labels = data["pixels"], data["labels"]
        if manifest["features"] is not None:
            session = ort.InferenceSession(str(bundle / "features.onnx"), providers=["CPUExecutionProvider"])
            feats = np.concatenate([session.run(None, {"pixels": pixels[i:i + 64]})[0]
                                    for i in range(0, len(pixels), 64)])
        else:
            feats = pixels
        trainer = asyncio.run(NativeTrainer.create(DirectoryBundle(bundle)))
        cached = (task.bundle_sha256, trainer, feats.astype(np.float32), labels)
        self._cache[task_id] = cached
        return cached

    def evaluate(self, task_id: str, version: int) -> dict | None:
        from array import array

        v = self.tasks.version(task_id, version)
        if v is None or not v.params_kept:
            return None
        bundle_sha, trainer, feats, labels = self._prepared(task_id)
        if v.bundle_sha256 != bundle_sha:
            return None
        params = self.tasks.params.get(v.params_sha256)

        async def run():
            await trainer.set_parameters(array("f", params.tobytes()))
            losses, logits = [], []
            for i in range(0, len(labels), 256):
                x, y = feats[i:i + 256], labels[i:i + 256].tolist()
                loss, out = await trainer.eval_step(array("f", x.tobytes()), y)
                losses.append(loss * len(y))
                logits.append(np.frombuffer(out, np.float32).reshape(len(y), -1))
            return sum(losses) / len(labels), np.concatenate(logits)

        loss, logits = asyncio.run(run())
        k = logits.shape[1]
        predicted = logits.argmax(1)
        confusion = np.zeros((k, k), dtype=np.int64)
        np.add.at(confusion, (labels, predicted), 1)
        support = confusion.sum(1)
        per_class = [float(confusion[i, i] / support[i]) if support[i] else None for i in range(k)]
        result = {"version": version, "accuracy": float((predicted == labels).mean()), "loss": float(loss),
                  "per_class": per_class, "confusion": confusion.tolist(), "samples": int(len(labels))}
        self.tasks.db.connect().execute(
            "INSERT OR REPLACE INTO evaluations(task_id, version, accuracy, loss, per_class, confusion, samples, created) "
            "VALUES(?,?,?,?,?,?,?,?)", (task_id, version, result["accuracy"], result["loss"],
                                        json.dumps(per_class), json.dumps(result["confusion"]),
                                        result["samples"], time.time()))
        return result
