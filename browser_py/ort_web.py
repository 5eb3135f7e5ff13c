"""Training backend for the browser: onnxruntime-web's training API via Pyodide's JS interop.

Only this module (and the page bootstrap) knows about ``ort``. JS errors become
:class:`TrainerError` with a readable message; proxies we create are destroyed.
"""
from __future__ import annotations

from array import array
from typing import Sequence

from .bundle_source import BundleSource
from .jsvalues import js_object, uint8array
from .trainer import TrainerError, check_batch


class OrtWebTrainer:
    name = "onnxruntime-web (wasm)"

    def __init__(self, manifest: dict, session) -> None:
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
        self._slots: dict[int, tuple] = {}  # batch size -> (inputs, labels, feeds), reused

    @classmethod
    async def create(cls, source: BundleSource) -> "OrtWebTrainer":
        import js
        from pyodide.ffi import JsException

        manifest = await source.load_manifest()
        options = {
            "checkpointState": uint8array(await source.read("checkpoint")),
            "trainModel": uint8array(await source.read("training_model.onnx")),
            "evalModel": uint8array(await source.read("eval_model.onnx")),
            "optimizerModel": uint8array(await source.read("optimizer_model.onnx")),
        }
        try:
            session = await js.ort.TrainingSession.create(js_object(options))
        except JsException as exc:
            raise TrainerError(f"onnxruntime-web could not load the bundle: {exc}") from None
        return cls(manifest, session)

    def _feeds(self, inputs: array, labels: Sequence[int]):
        """The feeds for a batch, in JS buffers made once per batch size and refilled:
        onnxruntime-web copies inputs into its own memory when a step is called."""
        import js
        from pyodide.ffi import to_js

        n = check_batch(self, inputs, labels)
        if n not in self._slots:
            x, y = js.Float32Array.new(len(inputs)), js.BigInt64Array.new(n)
            feeds = js_object({"input": js.ort.Tensor.new("float32", x, to_js([n, *self.input_shape])),
                               "labels": js.ort.Tensor.new("int64", y, to_js([n]))})
            self._slots[n] = (x, y, feeds)
        x, y, feeds = self._slots[n]
        x.assign(inputs)
        y.assign(array("q", labels))
        return feeds

    @staticmethod
    def _output(results, name: str):
        import js

        return js.Reflect.get(results, name)

    async def train_step(self, inputs: array, labels: Sequence[int]) -> float:
        return (await self.train_steps([(inputs, labels)]))[0]

    async def train_steps(self, batches: Sequence[tuple[array, Sequence[int]]]) -> list[float]:
        """Every step's three calls are made back to back and waited for once at the end.
        onnxruntime-web runs each call to completion before returning its promise (the wasm
        call is synchronous), so order holds; a test checks the losses against one-by-one
        waiting. Waiting on each promise from Python cost more than a head's step itself."""
        import js
        from pyodide.ffi import JsException, to_js

        session, pending = self._session, []
        for inputs, labels in batches:
            pending += [session.runTrainStep(self._feeds(inputs, labels)), session.runOptimizerStep(),
                        session.lazyResetGrad()]
        try:
            results = await js.Promise.all(to_js(pending))
        except JsException as exc:
            raise TrainerError(f"training step failed in onnxruntime-web: {exc}") from None
        return [float(self._output(results[3 * i], self._loss_name).data[0]) for i in range(len(batches))]

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
