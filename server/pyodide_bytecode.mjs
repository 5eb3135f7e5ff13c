// Compile Python modules to bytecode with the vendored Pyodide itself (the bytecode must be
// its Python's), run by Node: `node pyodide_bytecode.mjs PYODIDE_DIR IN.zip OUT.zip [--wheel]`.
// Pyodide ships its standard library as source, so every page start compiled each module it
// imported, in WebAssembly not yet optimised on a first visit: most of Python's start-up.
// Each module becomes an unchecked hash-based .pyc: for the standard library X.py -> X.pyc
// under the path zipimport loads it from; with --wheel (a wheel the page unpacks into
// site-packages) X.py stays, for tracebacks, and __pycache__/X.<tag>.pyc is added beside it.
// A module Python cannot compile keeps its source.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [dir, input, output, mode] = process.argv.slice(2);
if (!dir || !input || !output || (mode && mode !== "--wheel")) {
  console.error("usage: node pyodide_bytecode.mjs PYODIDE_DIR IN.zip OUT.zip [--wheel]");
  process.exit(2);
}
const { loadPyodide } = await import(pathToFileURL(path.join(dir, "pyodide.mjs")).href);
const pyodide = await loadPyodide({ indexURL: path.resolve(dir) + path.sep });
pyodide.FS.writeFile("/tmp/source.zip", fs.readFileSync(input));
const compiled = pyodide.runPython(`
import importlib.util
import site
import sys
import zipfile
from importlib._bootstrap_external import _code_to_hash_pyc

wheel = ${mode === "--wheel" ? "True" : "False"}
# where the page's Python finds the modules (and the file names its tracebacks show)
root = site.getsitepackages()[0] if wheel else next(p for p in sys.path if p.endswith(".zip"))
count = 0
with zipfile.ZipFile("/tmp/source.zip") as source, zipfile.ZipFile("/tmp/compiled.zip", "w") as out:
    for info in source.infolist():
        data = source.read(info)
        if info.filename.endswith(".py"):
            try:
                code = compile(data, f"{root}/{info.filename}", "exec", dont_inherit=True)
            except SyntaxError:  # e.g. a test's deliberately broken file: left as it was
                out.writestr(info, data)
                continue
            if wheel:
                out.writestr(info, data)
                name = importlib.util.cache_from_source(f"{root}/{info.filename}")[len(root) + 1:]
            else:
                name = info.filename + "c"
            entry = zipfile.ZipInfo(name, info.date_time)
            entry.compress_type = info.compress_type
            out.writestr(entry, bytes(_code_to_hash_pyc(code, importlib.util.source_hash(data), checked=False)))
            count += 1
        else:
            out.writestr(info, data)
count
`);
fs.writeFileSync(output, pyodide.FS.readFile("/tmp/compiled.zip"));
console.log(`compiled ${compiled} modules with Pyodide ${pyodide.version}`);
