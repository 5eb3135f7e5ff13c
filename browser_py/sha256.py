"""sha256 in whichever runtime we are in. In the browser a large input is hashed by Web
Crypto, off the main thread and ~10x faster than hashlib in WebAssembly (12 ms for a 1.5 MB
photo); small ones stay in Python, where the round trip to the browser costs more."""
from __future__ import annotations

import hashlib

from .runtime import IN_PYODIDE

OFF_THREAD_BYTES = 256 * 1024  # inputs at least this large go to Web Crypto in the browser


async def sha256_hex(data: bytes) -> str:
    """The sha256 of ``data`` as 64 hex digits."""
    if IN_PYODIDE and len(data) >= OFF_THREAD_BYTES:
        import js

        from .jsvalues import uint8array

        digest = await js.crypto.subtle.digest("SHA-256", uint8array(data))
        return js.Uint8Array.new(digest).to_bytes().hex()
    return hashlib.sha256(data).hexdigest()
