"""Where are we running?"""
import sys

IN_PYODIDE = sys.platform == "emscripten"
