"""The page's runtime: where we are running, marks on the browser's performance timeline,
what the start-up snapshot takes and must refresh, and which page work is long."""
import functools
import sys
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")

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


def fresh_process_state() -> None:
    """What a restored start-up snapshot would otherwise carry over from when it was made:
    the random generator's state (one sequence replayed each visit) and the time zone."""
    import random
    import time

    random.seed()
    if hasattr(time, "tzset"):
        time.tzset()


_long_work = 0


def long_work(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Mark a page action as long work (import, suggest, train) while it runs, on
    ``dataset.webflBusy`` (how many) and ``webflBusySince`` (when that last changed): the
    start-up snapshot's worker (www/js/boot.mjs) waits for a few quiet seconds,
    so on a device with few cores it does not slow what the participant is waiting for."""
    @functools.wraps(fn)
    async def run(*args, **kwargs):
        global _long_work
        _long_work += 1
        _show_long_work()
        try:
            return await fn(*args, **kwargs)
        finally:
            _long_work -= 1
            _show_long_work()
    return run


def _show_long_work() -> None:
    if IN_PYODIDE:
        import js

        data = js.document.documentElement.dataset
        data.webflBusy = str(_long_work)
        data.webflBusySince = str(js.Date.now())  # the last change either way
