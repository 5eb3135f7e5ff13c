"""Where are we running, and marks on the browser's performance timeline."""
import sys

IN_PYODIDE = sys.platform == "emscripten"


def mark(stage: str) -> None:
    """Name a moment of start-up (``webfl:<stage>``) so benchmarks can say where time goes."""
    if IN_PYODIDE:
        import js

        js.performance.mark(f"webfl:{stage}")


# Pyodide's standard library and site-packages (the client and its dependencies) live here;
# extensions are imported from zips elsewhere and stay out of a start-up snapshot.
PYODIDE_LIB = "/lib/"


def snapshot_modules() -> list[str]:
    """The modules this page imported from the standard library and the client's wheels:
    what a start-up snapshot (www/js/python_snapshot.mjs) imports before it is taken."""
    return sorted(name for name, module in list(sys.modules.items())
                  if name != "__main__" and str(getattr(module, "__file__", "") or "").startswith(PYODIDE_LIB))
