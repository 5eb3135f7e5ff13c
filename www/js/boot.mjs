// Thin bootstrap: load Pyodide from /vendor, unpack the webfl client wheel (and its deps),
// hand over to Python (browser_py.app.main). Everything else happens in Python.
const root = document.documentElement;
const START_TIMEOUT_MS = 90000;

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

// onnxruntime-web's threads: the device's cores up to MAX_THREADS (past 4, phones' slow
// cores and the page's own work gain little). ?threads=N (1-16) overrides it for measuring.
const MAX_THREADS = 4;
function wasmThreads() {
  const asked = new URLSearchParams(location.search).get("threads");
  if (asked !== null && /^[0-9]{1,2}$/.test(asked) && +asked >= 1 && +asked <= 16) return +asked;
  return Math.max(1, Math.min(MAX_THREADS, navigator.hardwareConcurrency || 1));
}

// Python reaches ES modules through this (the Content-Security-Policy forbids eval).
window.webfl = { importModule: (url) => import(url) };

async function boot() {
  root.dataset.webflState = "loading";
  const page = document.body.dataset.page || "participant";
  if (page === "participant") {
    // offline after the first visit (www/js/sw.js); the page works without it
    if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch((e) => console.warn("webfl:", e));
    if (typeof ort === "undefined") throw new Error("the training engine (onnxruntime-web) did not load");
    ort.env.wasm.wasmPaths = "/vendor/ort/";
    ort.env.wasm.numThreads = self.crossOriginIsolated ? wasmThreads() : 1;
  }
  // Which wheels to install comes from the server (one list, next to the pinned versions);
  // they are fetched while Pyodide starts and unpacked straight into site-packages (pure
  // Python, no dependencies to resolve: loading micropip to install them cost ~0.5 s).
  const wheels = fetch("/client/boot.json").then((r) => {
    if (!r.ok) throw new Error(`the client's install list could not be fetched (HTTP ${r.status})`);
    return r.json();
  }).then(({ wheels }) => Promise.all(wheels.map((url) => fetch(url).then((r) => {
    if (!r.ok) throw new Error(`${url} could not be fetched (HTTP ${r.status})`);
    return r.arrayBuffer();
  }))));
  wheels.catch(() => {});  // reported below, once Pyodide has loaded
  const { loadPyodide } = await import("/vendor/pyodide/pyodide.mjs");
  const pyodide = await loadPyodide({ indexURL: "/vendor/pyodide/" });
  performance.mark("webfl:python");
  for (const wheel of await wheels) pyodide.unpackArchive(wheel, "wheel");
  performance.mark("webfl:client");
  window.webfl.pyodide = pyodide;
  await pyodide.runPythonAsync(`import browser_py.app\nawait browser_py.app.main(${JSON.stringify(page)})`);
}

withTimeout(boot(), START_TIMEOUT_MS, "The app").catch((err) => fail(err && err.message ? err.message : String(err)));
