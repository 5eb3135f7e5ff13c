// Thin bootstrap: load Pyodide and micropip from /vendor, install the webfl client wheel,
// hand over to Python (browser_py.app.main). Everything else happens in Python.
const root = document.documentElement;
const START_TIMEOUT_MS = 90000;
const WHEELS = ["/client/webfl_client-0.1.0-py3-none-any.whl", "/vendor/pyodide/tenacity-9.2.1-py3-none-any.whl"];

function fail(message) {
  root.dataset.webflState = "error";
  root.dataset.webflError = message;
  const box = document.getElementById("error");
  if (box) {
    document.getElementById("error-message").textContent = message;
    box.hidden = false;
    const loading = document.getElementById("loading");
    if (loading) loading.hidden = true;
  }
  console.error("webfl:", message);
}

function withTimeout(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not load within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

async function boot() {
  root.dataset.webflState = "loading";
  const page = document.body.dataset.page || "participant";
  if (page === "participant") {
    if (typeof ort === "undefined") throw new Error("the training engine (onnxruntime-web) did not load");
    ort.env.wasm.wasmPaths = "/vendor/ort/";
    ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(2, navigator.hardwareConcurrency || 1) : 1;
  }
  const { loadPyodide } = await import("/vendor/pyodide/pyodide.mjs");
  const pyodide = await loadPyodide({ indexURL: "/vendor/pyodide/" });
  await pyodide.loadPackage("/vendor/pyodide/micropip-0.11.1-py3-none-any.whl");
  const micropip = pyodide.pyimport("micropip");
  await micropip.install.callKwargs(WHEELS.map((w) => new URL(w, location.href).href), { deps: false });
  micropip.destroy();
  window.webfl = { pyodide };
  await pyodide.runPythonAsync(`import browser_py.app\nawait browser_py.app.main(${JSON.stringify(page)})`);
}

withTimeout(boot(), START_TIMEOUT_MS, "The app").catch((err) => fail(err && err.message ? err.message : String(err)));
