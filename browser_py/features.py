"""The frozen part of a bundle: pixels -> features, computed once per image and cached.

Bundles without a feature extractor pass pixels through. Otherwise ``features.onnx`` runs
as an inference session: onnxruntime in CPython; in the browser onnxruntime-web on WebGPU
when the browser offers a hardware adapter, else wasm (``backend`` says which).
"""
from __future__ import annotations

import asyncio
from array import array

from .bundle_source import BundleSource
from .jsvalues import float32array, js_object, uint8array
from .runtime import IN_PYODIDE


class FeatureExtractor:
    """Batches of per-sample float arrays in, per-sample feature arrays out (cached by key)."""

    backend = "none"
    off_main_thread = False  # True: a batch runs elsewhere and the page stays free meanwhile

    def __init__(self, manifest: dict) -> None:
        self.manifest = manifest
        shape = manifest["features"]["shape"] if manifest["features"] else manifest["head"]["input_shape"]
        self.output_size = 1
        for d in shape:
            self.output_size *= d
        self.input_shape = list(manifest["input"]["shape"])
        self._cache: dict[str, array] = {}

    async def _run(self, batch: array, n: int, output: str = "features") -> array:
        return batch  # identity: everything trains

    @property
    def map_shape(self) -> list[int] | None:
        """(channels, height, width) of the spatial map behind the features, if the bundle has it."""
        spec = (self.manifest.get("features") or {}).get("map")
        return list(spec["shape"]) if spec else None

    async def feature_map(self, pixels: array) -> array | None:
        """One image's spatial feature map (for "why this label?"), or None without one."""
        if self.map_shape is None:
            return None
        return await self._run(pixels, 1, self.manifest["features"]["map"]["output"])

    async def extract(self, keyed: list[tuple[str, array]], batch_size: int = 16) -> list[array]:
        """Features for (key, pixels) pairs; cached keys are not computed again."""
        todo = [(k, px) for k, px in keyed if k not in self._cache]
        for i in range(0, len(todo), batch_size):
            chunk = todo[i:i + batch_size]
            joined = array("f")
            for _, px in chunk:
                joined.extend(px)
            out = await self._run(joined, len(chunk))
            size = self.output_size
            for j, (key, _) in enumerate(chunk):
                self._cache[key] = out[j * size:(j + 1) * size]
        return [self._cache[k] for k, _ in keyed]

    def forget(self, key: str) -> None:
        self._cache.pop(key, None)

    @property
    def sha256(self) -> str | None:
        """The extractor's identity (its file's sha256); None when pixels pass through."""
        spec = self.manifest.get("features")
        return self.manifest["files"][spec["file"]]["sha256"] if spec else None

    def known(self, key: str) -> bool:
        return key in self._cache

    def cached(self, keys: list[str]) -> list[array]:
        """Features already computed (or remembered) for these keys, in order."""
        return [self._cache[k] for k in keys]

    def remember(self, key: str, features: array) -> None:
        """Features computed earlier (kept with the image across reloads)."""
        if len(features) == self.output_size:
            self._cache[key] = features


class NativeFeatures(FeatureExtractor):
    backend = "onnxruntime (CPU)"

    def __init__(self, manifest: dict, model_bytes: bytes, threads: int | None = None) -> None:
        super().__init__(manifest)
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:  # None: onnxruntime's default (one per core)
            options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])

    async def _run(self, batch: array, n: int, output: str = "features") -> array:
        import numpy as np

        x = np.frombuffer(batch, dtype=np.float32).reshape([n, *self.input_shape])
        out = self._session.run([output], {"pixels": x})[0]
        return array("f", np.ascontiguousarray(out, dtype=np.float32).tobytes())


# onnxruntime-web 1.30 (wasm) for inference: faster than the training build's 1.19.2 and able
# to run in a worker of its own, so a batch of photos never holds the page's main thread.
INFERENCE_ORT = "/vendor/ort-inference/"


class WebFeatures(FeatureExtractor):
    """onnxruntime-web inference: WebGPU (1.19.2's build) where the browser offers a hardware
    adapter, else 1.30's wasm build in its own worker (``off_main_thread``)."""

    def __init__(self, manifest: dict, session, ort, backend: str, off_main_thread: bool = False) -> None:
        super().__init__(manifest)
        self._session = session
        self._ort = ort
        self.backend = backend
        self.off_main_thread = off_main_thread

    @classmethod
    async def create(cls, manifest: dict, model_bytes: bytes, prefer_webgpu: bool = True,
                     allow_software_gpu: bool = False) -> "WebFeatures":
        import js

        data = uint8array(model_bytes)
        if prefer_webgpu and await webgpu_available(allow_software_gpu):
            # a dynamic import through the bootstrap: the page's CSP allows no eval
            ort = await js.webfl.importModule("/vendor/ort/ort.webgpu.min.mjs")
            ort.env.wasm.wasmPaths = "/vendor/ort/"
            options = js_object({"executionProviders": ["webgpu"]})
            session = await ort.InferenceSession.create(data, options)
            return cls(manifest, session, ort, "WebGPU")
        ort = await js.webfl.importModule(f"{INFERENCE_ORT}ort.wasm.min.mjs")
        threads = int(js.ort.env.wasm.numThreads or 1)  # the page's choice (www/js/boot.mjs)
        # settings are read when the first session starts the engine; later ones change nothing
        ort.env.wasm.wasmPaths = INFERENCE_ORT
        ort.env.wasm.numThreads = threads
        ort.env.wasm.proxy = True
        options = js_object({"executionProviders": ["wasm"]})
        # the worker fetches and compiles the engine while the page gets ready (on a cold start
        # that took ~1 s here); the first extraction waits for it, and a failure surfaces there
        session = asyncio.ensure_future(_awaited(ort.InferenceSession.create(data, options)))
        return cls(manifest, session, ort, f"wasm, {threads} thread{'s' if threads != 1 else ''}, in a worker",
                   off_main_thread=True)

    async def _run(self, batch: array, n: int, output: str = "features") -> array:
        import js
        from pyodide.ffi import to_js

        if isinstance(self._session, asyncio.Future):
            self._session = await self._session
        tensor = self._ort.Tensor.new("float32", float32array(batch), to_js([n, *self.input_shape]))
        feeds = js_object({"pixels": tensor})
        results = await self._session.run(feeds, to_js([output]))  # only what is asked for is copied out
        out = js.Reflect.get(results, output)
        return array("f", out.data.to_bytes())


async def _awaited(promise):
    return await promise


async def webgpu_available(allow_software: bool = False) -> bool:
    """A WebGPU adapter exists (and, unless allowed, is not a software fallback)."""
    import js
    from pyodide.ffi import jsnull

    gpu = getattr(js.navigator, "gpu", None)
    if gpu is None or gpu is jsnull:
        return False
    try:
        adapter = await gpu.requestAdapter()
    except Exception:
        return False
    if adapter is None or adapter is jsnull:  # JS null is not Python None in Pyodide
        return False
    if allow_software:
        return True
    fallback = bool(getattr(adapter, "isFallbackAdapter", False))
    info = getattr(adapter, "info", None)
    arch = str(getattr(info, "architecture", "")) if info is not None else ""
    return not fallback and "swiftshader" not in arch.lower()


async def load_features(manifest: dict, source: BundleSource, prefer_webgpu: bool = True) -> FeatureExtractor:
    if manifest["features"] is None:
        return FeatureExtractor(manifest)
    model = await source.read(manifest["features"]["file"])
    if IN_PYODIDE:
        return await WebFeatures.create(manifest, model, prefer_webgpu)
    return NativeFeatures(manifest, model)
