"""Training backend for the browser: onnxruntime-web's training API via Pyodide's JS interop.

Only this module, the page bootstrap and the training loop it hands steps to
(www/js/train_steps.mjs) know about ``ort``. JS errors become
:class:`TrainerError` with a readable message; proxies we create are destroyed.
"""
from __future__ import annotations

from array import array
from typing import Sequence

from .bundle_source import BundleSource
from .jsvalues import bigint64array, float32array, int32array, js_object, uint8array
from .trainer import TrainerError, check_batch, check_samples, concat

TRAIN_STEPS_MODULE = "/static/js/train_steps.mjs"
# TrainingSession.create's options -> the bundle files they come from
TRAINING_FILES = {"checkpointState": "checkpoint", "trainModel": "training_model.onnx",
                  "evalModel": "eval_model.onnx", "optimizerModel": "optimizer_model.onnx"}


class OrtWebTrainer:
    name = "onnxruntime-web (wasm)"

    def __init__(self, manifest: dict, session, steps) -> None:
        import js

        threads = int(js.ort.env.wasm.numThreads or 1)
        self.name = f"onnxruntime-web (wasm, {threads} thread{'s' if threads != 1 else ''})"
        self.manifest = manifest
        self.input_shape = list(manifest["head"]["input_shape"])
        self.num_parameters = int(manifest["num_parameters"])
        self._session = session
        self._loss_name = str(session.trainingOutputNames[0])
        self._logits_name = manifest["head"]["output"]
        eval_names = [str(n) for n in session.evalOutputNames]
        self._eval_loss_name = eval_names[0]
        self._steps = steps  # the trainSteps module
        self._last_samples: tuple | None = None  # (arrays, labels, their JS copy)

    @classmethod
    async def create(cls, source: BundleSource) -> "OrtWebTrainer":
        import js
        from pyodide.ffi import JsException

        manifest = await source.load_manifest()
        source.prefetch(list(TRAINING_FILES.values()))  # fetched side by side
        options = {key: uint8array(await source.read(name)) for key, name in TRAINING_FILES.items()}
        try:
            session = await js.ort.TrainingSession.create(js_object(options))
        except JsException as exc:
            raise TrainerError(f"onnxruntime-web could not load the bundle: {exc}") from None
        return cls(manifest, session, await js.webfl.importModule(TRAIN_STEPS_MODULE))

    @staticmethod
    def _in_js(inputs: array, labels: Sequence[int]) -> tuple:
        """Inputs and labels as the JS typed arrays onnxruntime-web takes (labels are int64)."""
        return float32array(inputs), bigint64array(array("q", labels))

    def _feeds(self, inputs: array, labels: Sequence[int]):
        import js
        from pyodide.ffi import to_js

        n = check_batch(self, inputs, labels)
        x, y = self._in_js(inputs, labels)
        return js_object({"input": js.ort.Tensor.new("float32", x, to_js([n, *self.input_shape])),
                          "labels": js.ort.Tensor.new("int64", y, to_js([n]))})

    @staticmethod
    def _output(results, name: str):
        import js

        return js.Reflect.get(results, name)

    async def train_step(self, inputs: array, labels: Sequence[int]) -> float:
        n = check_batch(self, inputs, labels)
        return (await self.train_steps(self._in_js(inputs, labels), [range(n)]))[0]

    def samples(self, xs: Sequence[array], ys: Sequence[int]) -> tuple:
        """The training set copied once into JS typed arrays (rows back to back). The same
        set as the last fit's (the very same arrays, which nothing changes in place: the
        participant's cached features) reuses that copy: a later round on the same photos
        skips it (6.5 MB took ~7 ms here, a fifth of a 40-step fit of the head)."""
        check_samples(self, xs, ys)
        last = self._last_samples
        if last is not None and len(last[0]) == len(xs) and last[1] == list(ys) \
                and all(a is b for a, b in zip(last[0], xs)):
            return last[2]
        made = self._in_js(concat(xs), ys)
        self._last_samples = (list(xs), list(ys), made)  # holding the arrays keeps them the same objects
        return made

    async def train_steps(self, samples: tuple, batches: Sequence[Sequence[int]]) -> list[float]:
        """The slice's sample indices go over to JS once and ``trainSteps`` (www/js/
        train_steps.mjs) gathers each batch and awaits each step there: awaiting a JS promise
        from Python is a trip through Pyodide's event loop, which cost more than a head's
        whole step, and so did copying each batch out of Python."""
        from pyodide.ffi import JsException, to_js

        if not batches:
            return []
        rows, labels = samples
        order = array("i", (i for part in batches for i in part))
        if not all(batches) or not 0 <= min(order) <= max(order) < labels.length:
            raise TrainerError(f"every batch needs samples, named among the {labels.length} there are")
        try:
            losses = await self._steps.trainSteps(
                self._session, rows, labels, int32array(order), to_js([len(part) for part in batches]),
                to_js(self.input_shape), self._loss_name)
        except JsException as exc:
            raise TrainerError(f"training step failed in onnxruntime-web: {exc}") from None
        return [float(v) for v in losses.to_py()]

    async def eval_step(self, inputs: array, labels: Sequence[int]) -> tuple[float, array]:
        feeds = self._feeds(inputs, labels)
        results = await self._session.runEvalStep(feeds)
        loss = float(self._output(results, self._eval_loss_name).data[0])
        logits = array("f", self._output(results, self._logits_name).data.to_bytes())
        return loss, logits

    async def get_parameters(self) -> array:
        tensor = await self._session.getContiguousParameters(True)
        return array("f", tensor.data.to_bytes())

    async def set_parameters(self, params: array) -> None:
        if len(params) != self.num_parameters:
            raise TrainerError(f"expected {self.num_parameters} parameters, got {len(params)}")
        await self._session.loadParametersBuffer(uint8array(params.tobytes()), True)
