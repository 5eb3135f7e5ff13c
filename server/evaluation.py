"""Server-side evaluation of global versions on an admin's validation set (CPU onnxruntime).

The validation images are decoded once by the participants' own decoder
(:mod:`browser_py.native.images`: EXIF orientation, convert, resize), passed through the
bundle's frozen feature extractor once (an onnxruntime inference session on
``features.onnx``) and cached; each version then only runs the head graph
(``eval_model.onnx`` with the version's parameters as inputs), so evaluating a version costs
milliseconds to seconds. Running ``model.onnx`` per version would redo the backbone every
time; a test checks both give the same logits.
Work runs on one background thread; when versions arrive faster than they can be
evaluated, the newest waiting version of a task is evaluated next and older waiting
ones are skipped (the dashboard wants the present, not a backlog).
"""
from __future__ import annotations

import io
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
    """uint8 images (N,H,W) or (N,H,W,3) -> float32 NCHW pixels in [0, 255], converted and
    resized by the participants' own decoder (:mod:`browser_py.native.images`)."""
    from browser_py.native.images import from_array, planes

    spec = manifest["input"]
    size = tuple(spec["size"])
    return np.stack([planes(from_array(im, spec["color"], size)) for im in images])


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
    """Validation sets live under the data dir, or (PostgreSQL) in the shared ``files``
    table, so the one process that evaluates can be any of them."""

    def __init__(self, tasks: TaskStore, data_dir: Path) -> None:
        self.tasks = tasks
        self.files = tasks.storage.files
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
        return self.tasks.storage.validation_path(task_id)

    def has_validation(self, task_id: str) -> bool:
        if self.files is not None:
            return self.files.sha(f"validation/{task_id}") is not None
        return self.path(task_id).exists()

    def catch_up(self) -> None:
        """Schedule each task's newest version if it has no score yet: versions made by
        other processes (which do not evaluate) reach the one that does."""
        for task in self.tasks.list():
            if task.bundle_status != "ready" or not self.has_validation(task.id):
                continue
            try:
                newest = self.tasks.current_version(task.id).version
            except APIError:
                continue
            if self.tasks.storage.evaluations.latest_version(task.id) != newest:
                self.schedule(task.id, newest)

    def store_validation(self, task_id: str, data: bytes) -> dict:
        manifest = self.tasks.manifest(task_id)
        pixels, labels = read_validation_upload(data, manifest)
        if len(labels) == 0:
            raise ValidationSetError("the validation set is empty")
        if len(labels) > MAX_VALIDATION_IMAGES:
            raise ValidationSetError(f"at most {MAX_VALIDATION_IMAGES} validation images, got {len(labels)}")
        tmp = self.root / f"{task_id}.part.npz"
        np.savez(tmp, pixels=pixels, labels=labels)
        if self.files is not None:
            self.files.put(f"validation/{task_id}", tmp.read_bytes())
            tmp.unlink()
        else:
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
        """(bundle sha, head session, features, labels): features computed once per bundle
        and validation set with an inference session on ``features.onnx``."""
        import onnxruntime as ort

        task = self.tasks.get(task_id)
        cached = self._cache.get(task_id)
        validation = self.path(task_id)  # (PostgreSQL) named by content: a new upload, a new path
        if cached is not None and cached[0] == task.bundle_sha256 and cached[-1] == validation:
            return cached[:-1]
        bundle = self.tasks.bundle_dir(task_id, task)
        manifest = self.tasks.manifest(task_id)
        with np.load(validation) as data:
            pixels, labels = data["pixels"], data["labels"]
        if manifest["features"] is not None:
            session = ort.InferenceSession(str(bundle / manifest["features"]["file"]),
                                           providers=["CPUExecutionProvider"])
            feats = np.concatenate([session.run(None, {manifest["features"]["input"]: pixels[i:i + 64]})[0]
                                    for i in range(0, len(pixels), 64)])
        else:
            feats = pixels
        head = ort.InferenceSession(str(bundle / "eval_model.onnx"), providers=["CPUExecutionProvider"])
        cached = (task.bundle_sha256, head, feats.astype(np.float32), labels, manifest)
        self._cache[task_id] = cached + (validation,)
        return cached

    def evaluate(self, task_id: str, version: int) -> dict | None:
        """Score one version: the head graph (``eval_model.onnx``, the version's parameters fed
        as its inputs) in an onnxruntime inference session over the cached features, scored by
        the participants' own :class:`~browser_py.scoring.Scores`."""
        from browser_py.scoring import Scores

        v = self.tasks.version(task_id, version)
        if v is None or not v.params_kept:
            return None
        bundle_sha, head, feats, labels, manifest = self._prepared(task_id)
        if v.bundle_sha256 != bundle_sha:
            return None
        params = self.tasks.params.get(v.params_sha256)
        weights = {p["name"]: params[p["offset"]:p["offset"] + p["size"]].reshape(p["shape"])
                   for p in manifest["parameters"]}
        names = manifest["head"]
        logits_name = names["output"]
        loss_name = next(o.name for o in head.get_outputs() if o.name != logits_name)
        scores = Scores(len(manifest["classes"]))
        for i in range(0, len(labels), 256):
            y = labels[i:i + 256].astype(np.int64)
            loss, logits = head.run([loss_name, logits_name],
                                    {names["input"]: feats[i:i + 256], names["labels"]: y} | weights)
            scores.add(y.tolist(), logits.ravel().tolist(), float(loss))
        result = {"version": version} | scores.summary()
        self.tasks.storage.evaluations.put(task_id, result)
        return result
