// Python's start-up, kept: a memory snapshot of a Pyodide that has imported what the page
// uses, made in this worker (off the page's main thread) and kept in Cache Storage. The
// next visit restores it (www/js/boot.mjs) instead of starting Python and importing the
// client again. Shared by the page and the worker, so the cache's names live in one place.
export const SNAPSHOT_CACHE = "webfl-python-1";
export const SNAPSHOT_REQUEST = "/python-snapshot";  // a cache key, never fetched
export const PYODIDE_URL = "/vendor/pyodide/";
export const KEY_HEADER = "X-WebFL-Snapshot-Key";

/** Unpack the client's wheels (pure Python) into site-packages. unpackArchive's default is
 * the working directory (/home/pyodide), which a snapshot's module list leaves out: with
 * it, no client module was in the snapshot and every visit imported them all again. */
export function installWheels(pyodide, wheels) {
  const sitePackages = pyodide.runPython("import site; site.getsitepackages()[0]");
  for (const wheel of wheels) pyodide.unpackArchive(wheel, "wheel", { extractDir: sitePackages });
}

/** Hex SHA-256 of the client's wheels: a snapshot holds their modules, so a new client
 * (or a new dependency) makes any kept snapshot stale. */
export async function wheelsKey(wheels) {
  const parts = new Uint8Array(wheels.reduce((n, w) => n + w.byteLength, 0));
  let at = 0;
  for (const w of wheels) { parts.set(new Uint8Array(w), at); at += w.byteLength; }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", parts));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The kept snapshot as {key, bytes} (key: the wheels it was made from), or null. Read
 * while the wheels are still being fetched, so the page checks the key afterwards. */
export async function keptSnapshot() {
  if (!("caches" in self)) return null;
  try {
    const kept = await (await caches.open(SNAPSHOT_CACHE)).match(SNAPSHOT_REQUEST);
    if (!kept) return null;
    return { key: kept.headers.get(KEY_HEADER), bytes: new Uint8Array(await kept.arrayBuffer()) };
  } catch (e) {
    console.warn("webfl: the kept Python snapshot could not be read:", e);
    return null;
  }
}

export async function dropSnapshot() {
  if ("caches" in self) await caches.delete(SNAPSHOT_CACHE).catch(() => {});
}

// The worker: {wheels, modules, key} in; the snapshot kept; {size} or {error} out.
if (typeof WorkerGlobalScope !== "undefined" && self instanceof WorkerGlobalScope) {
  self.onmessage = async ({ data: { wheels, modules, key } }) => {
    try {
      const { loadPyodide } = await import(`${PYODIDE_URL}pyodide.mjs`);
      const py = await loadPyodide({ indexURL: PYODIDE_URL, _makeSnapshot: true });
      installWheels(py, wheels);
      // The names go in as literal text: a JS value handed to Python would be a reference
      // the snapshot cannot keep. A module that will not import here is left for the page.
      py.runPython(`import importlib, json
for name in json.loads(${JSON.stringify(JSON.stringify(modules))}):
    try:
        importlib.import_module(name)
    except Exception:
        pass`);
      const bytes = py.makeMemorySnapshot();
      const cache = await caches.open(SNAPSHOT_CACHE);
      await cache.put(SNAPSHOT_REQUEST, new Response(bytes, {
        headers: { "Content-Type": "application/octet-stream", [KEY_HEADER]: key },
      }));
      self.postMessage({ size: bytes.byteLength });
    } catch (e) {
      self.postMessage({ error: String(e && e.message ? e.message : e) });
    }
  };
}
