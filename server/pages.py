"""Pages and static files: the participant page, the JS bootstrap, vendored runtimes.

Every response carries COOP/COEP so onnxruntime-web gets cross-origin isolation (and
with it wasm threads). Vendored files are pinned by version, so they are cached for a
long time; our own files are revalidated by ETag.
"""
from __future__ import annotations

import mimetypes
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, request, send_from_directory
from werkzeug.security import safe_join

from .client_wheel import WHEEL_NAME

bp = Blueprint("pages", __name__)

# Python 3.11's table lacks these; a wrong .wasm type makes Pyodide hang forever.
for ext, kind in ((".wasm", "application/wasm"), (".mjs", "text/javascript"), (".js", "text/javascript")):
    mimetypes.add_type(kind, ext)

def _www() -> Path:
    return Path(current_app.config["WWW_DIR"])


@bp.route("/")
def index():
    return _static_file("index.html", cache_seconds=0)


@bp.route("/admin")
def admin():
    return _static_file("admin.html", cache_seconds=0)


@bp.route("/sw.js")
def service_worker():
    """The participant page's service worker (offline after the first visit); served from
    the root so that it may answer for every page of the app."""
    return _static_file("js/sw.js", cache_seconds=0)


@bp.route("/static/<path:name>")
def static_file(name: str):
    return _static_file(name, cache_seconds=0)


@bp.route("/client/boot.json")
def boot_manifest():
    """What the bootstrap unpacks: the client wheel and its pure-Python dependencies. One
    list, kept by the server next to the pins (www/js/boot.mjs names none)."""
    from flask import jsonify

    from .vendor import BROWSER_WHEELS

    response = jsonify({"wheels": [f"/client/{WHEEL_NAME}", *(f"/vendor/{w}" for w in BROWSER_WHEELS)]})
    response.cache_control.no_cache = True
    return response


@bp.route("/vendor/<path:name>")
def vendor_file(name: str):
    """Pinned files: cached for a year; the gzip twin made at setup when the browser takes it."""
    year = 365 * 24 * 3600
    if "gzip" in request.headers.get("Accept-Encoding", "") and not name.endswith(".gz"):
        packed = safe_join(str(_www() / "vendor"), f"{name}.gz")
        if packed is not None and Path(packed).is_file():
            response = _static_file(f"vendor/{name}.gz", cache_seconds=year, immutable=True)
            response.headers["Content-Encoding"] = "gzip"
            response.mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
            response.headers.pop("Content-Disposition", None)
            response.vary.add("Accept-Encoding")
            return response
    response = _static_file(f"vendor/{name}", cache_seconds=year, immutable=True)
    response.vary.add("Accept-Encoding")
    return response


@bp.route(f"/client/{WHEEL_NAME}")
def client_wheel():
    from .services import services

    response = Response(services().client_wheel, mimetype="application/zip")
    response.set_etag(services().client_wheel_etag)
    response.cache_control.no_cache = True
    return response.make_conditional(request)


@bp.route("/extensions/<name>")
def extension_wheel(name: str):
    """An extension as a wheel, named like ``webfl_ext_<name>-0.1.0-py3-none-any.whl``."""
    from .client_wheel import build_extension_wheel, extension_dist, wheel_name
    from .errors import NotFound
    from .taskconfig import available_extensions

    found = {wheel_name(extension_dist(n)): p
             for n, p in available_extensions(current_app.config["EXTENSIONS_DIR"]).items()}
    if name not in found:
        raise NotFound(f"no extension {name!r}", sorted(found))
    response = Response(build_extension_wheel(found[name]), mimetype="application/zip")
    response.add_etag()
    response.cache_control.no_cache = True
    return response.make_conditional(request)


def _static_file(name: str, cache_seconds: int, immutable: bool = False):
    # send_from_directory refuses paths that escape the directory (404).
    response = send_from_directory(_www(), name, max_age=cache_seconds, conditional=True, etag=True)
    if immutable:
        response.cache_control.immutable = True
    elif cache_seconds == 0:
        response.cache_control.no_cache = True
    return response


# The app pages may talk to their own origin only: no script, extension or injected code can
# send data elsewhere from the browser. No inline script and no eval ('wasm-unsafe-eval' only
# lets WebAssembly compile); blob: serves thumbnails and onnxruntime-web's worker threads.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'", "script-src 'self' 'wasm-unsafe-eval'", "connect-src 'self'",
    "img-src 'self' blob: data:", "style-src 'self' 'unsafe-inline'", "worker-src 'self' blob:",
    "font-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'"))


def add_isolation_headers(app: Flask) -> None:
    @app.after_request
    def _isolate(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        response.headers["Cross-Origin-Embedder-Policy"] = "require-corp"
        response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response
