"""Where are we running, and marks on the browser's performance timeline."""
import sys

IN_PYODIDE = sys.platform == "emscripten"


def mark(stage: str) -> None:
    """Name a moment of start-up (``webfl:<stage>``) so benchmarks can say where time goes."""
    if IN_PYODIDE:
        import js

        js.performance.mark(f"webfl:{stage}")
