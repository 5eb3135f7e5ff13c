// Thin bootstrap: load Pyodide from /vendor, unpack the webfl client wheel (and its deps),
// hand over to Python (browser_py.app.main). Everything else happens in Python.
import { PYODIDE_URL, dropSnapshot, installWheels, keptSnapshot, wheelsKey } from "./python_snapshot.mjs";
import { rgbPlanes } from "./pixels.mjs";

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

// Python reaches ES modules through this (the Content-Security-Policy forbids eval); the
// pixel helper is loaded with the page, so a page gone offline still has it.
window.webfl = { importModule: (url) => import(url), rgbPlanes };

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
  // they are fetched while Pyodide's loader loads and unpacked straight into site-packages
  // (pure Python, no dependencies to resolve: loading micropip to install them cost ~0.5 s).
  const loader = import(`${PYODIDE_URL}pyodide.mjs`);
  const kept = keptSnapshot();
  const wheels = await fetch("/client/boot.json").then((r) => {
    if (!r.ok) throw new Error(`the client's install list could not be fetched (HTTP ${r.status})`);
    return r.json();
  }).then(({ wheels }) => Promise.all(wheels.map((url) => fetch(url).then((r) => {
    if (!r.ok) throw new Error(`${url} could not be fetched (HTTP ${r.status})`);
    return r.arrayBuffer();
  }))));
  const { loadPyodide } = await loader;
  // A snapshot kept from an earlier visit skips starting Python and importing the client.
  const key = await wheelsKey(wheels);
  const snapshot = await kept.then((k) => (k && k.key === key ? k.bytes : null));
  let pyodide = null;
  if (snapshot) {
    try {
      pyodide = await loadPyodide({ indexURL: PYODIDE_URL, _loadSnapshot: snapshot });
      root.dataset.webflPython = "snapshot";
    } catch (e) {  // another Pyodide build, damaged bytes: start afresh and make a new one
      console.warn("webfl: the kept Python snapshot could not be restored:", e);
      await dropSnapshot();
    }
  }
  if (!pyodide) {
    pyodide = await loadPyodide({ indexURL: PYODIDE_URL });
    root.dataset.webflPython = "fresh";
  }
  performance.mark("webfl:python");
  installWheels(pyodide, wheels);
  performance.mark("webfl:client");
  window.webfl.pyodide = pyodide;
  await pyodide.runPythonAsync(`import browser_py.app\nawait browser_py.app.main(${JSON.stringify(page)})`);
  if (page === "participant" && root.dataset.webflPython === "fresh" && root.dataset.webflState === "ready") {
    const modules = pyodide.runPython("import browser_py.runtime\nbrowser_py.runtime.snapshot_modules()").toJs();
    setTimeout(() => keepSnapshot(wheels, modules, key), SNAPSHOT_AFTER_MS);
  }
}

// The snapshot is made once the page has settled, in a worker: it costs a second Python
// start-up (seconds of CPU), none of it on the page's main thread. It waits while the page
// does long work and for a few seconds after (browser_py.runtime.long_work), so that on a
// device with few cores it does not slow an import or a round.
const SNAPSHOT_AFTER_MS = 3000;
function keepSnapshot(wheels, modules, key) {
  const quietFor = Date.now() - +(root.dataset.webflBusySince || 0);
  if (+(root.dataset.webflBusy || 0) > 0 || quietFor < SNAPSHOT_AFTER_MS) {
    setTimeout(() => keepSnapshot(wheels, modules, key), 1000);
    return;
  }
  const worker = new Worker("/static/js/python_snapshot.mjs", { type: "module" });
  worker.onmessage = ({ data }) => {
    worker.terminate();
    if (data.error) console.warn("webfl: no Python snapshot was kept:", data.error);
    else root.dataset.webflSnapshot = "kept";
  };
  worker.onerror = (e) => { worker.terminate(); console.warn("webfl: the Python snapshot worker failed:", e.message); };
  worker.postMessage({ wheels, modules, key });
}

withTimeout(boot(), START_TIMEOUT_MS, "The app").catch((err) => fail(err && err.message ? err.message : String(err)));
