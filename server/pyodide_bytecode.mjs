// Compile Python modules to bytecode with the vendored Pyodide itself (the bytecode must be
// its Python's), run by Node at setup: `node pyodide_bytecode.mjs PYODIDE_DIR IN.zip OUT.zip`.
// Pyodide ships its standard library as source, so every page start compiled each module it
// imported, in WebAssembly not yet optimised on a first visit: most of Python's start-up.
// Each module becomes an unchecked hash-based .pyc (X.py -> X.pyc) under the path zipimport
// loads it from; a module Python cannot compile keeps its source.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [dir, input, output] = process.argv.slice(2);
if (!dir || !input || !output) {
  console.error("usage: node pyodide_bytecode.mjs PYODIDE_DIR IN.zip OUT.zip");
  process.exit(2);
}
const { loadPyodide } = await import(pathToFileURL(path.join(dir, "pyodide.mjs")).href);
const pyodide = await loadPyodide({ indexURL: path.resolve(dir) + path.sep });
pyodide.FS.writeFile("/tmp/source.zip", fs.readFileSync(input));
const compiled = pyodide.runPython(`
import importlib.util
import sys
import zipfile
from importlib._bootstrap_external import _code_to_hash_pyc

root = next(p for p in sys.path if p.endswith(".zip"))  # where the page's Python finds it
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
            entry = zipfile.ZipInfo(info.filename + "c", info.date_time)
            entry.compress_type = info.compress_type
            out.writestr(entry, bytes(_code_to_hash_pyc(code, importlib.util.source_hash(data), checked=False)))
            count += 1
        else:
            out.writestr(info, data)
count
`);
fs.writeFileSync(output, pyodide.FS.readFile("/tmp/compiled.zip"));
console.log(`compiled ${compiled} modules with Pyodide ${pyodide.version}`);
