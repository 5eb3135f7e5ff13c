"""How an update travels to the server (the ``X-WebFL-Encoding`` header): one home for the
formats, used by the client to encode, the server to decode and experiments to count bytes.

- ``f32``: the new local parameters, little-endian float32 (4 bytes per parameter).
- ``q8-delta``: the change from the base version's parameters, quantised to 8 bits in
  blocks of :data:`BLOCK` values: first one float32 scale per block, then one int8 per
  value; a value is ``q * scale``. About 0.254 of ``f32``. The client keeps what the
  rounding dropped and adds it to its next change (error feedback: Seide et al. 2014,
  "1-Bit Stochastic Gradient Descent"; Karimireddy et al. 2019, "Error Feedback Fixes
  SignSGD"), so over rounds nothing is lost, only delayed.

Either may also be gzip-compressed (``Content-Encoding: gzip``).
"""
from __future__ import annotations

import struct
from array import array

ENCODINGS = ("f32", "q8-delta")
BLOCK = 256
LEVELS = 127  # int8 values used: -127..127 (symmetric)


def blocks(n: int) -> int:
    return (n + BLOCK - 1) // BLOCK


def encoded_size(encoding: str, n: int) -> int:
    """Bytes of an update of ``n`` parameters in ``encoding`` (before any gzip)."""
    if encoding == "f32":
        return 4 * n
    if encoding == "q8-delta":
        return 4 * blocks(n) + n
    raise ValueError(f"unknown update encoding {encoding!r}; one of {', '.join(ENCODINGS)}")


def encode_q8_delta(params: array, base: array, carried: array | None = None) -> tuple[bytes, array]:
    """``q8-delta`` of ``params - base`` plus what earlier rounds' rounding dropped
    (``carried``); returns the body and what this rounding dropped (carry it to the next)."""
    n = len(params)
    if len(base) != n or (carried is not None and len(carried) != n):
        raise ValueError("params, base and the carried error must have the same length")
    change = [p - b + (carried[i] if carried is not None else 0.0) for i, (p, b) in enumerate(zip(params, base))]
    scales = array("f")
    codes = bytearray(n)
    dropped = array("f", bytes(4 * n))
    for start in range(0, n, BLOCK):
        part = change[start:start + BLOCK]
        top = max(abs(v) for v in part)
        scale = array("f", [top / LEVELS])[0]  # as float32, the value the server will use
        scales.append(scale)
        for i, v in enumerate(part, start):
            q = 0 if scale == 0 else max(-LEVELS, min(LEVELS, round(v / scale)))
            codes[i] = q & 0xFF
            dropped[i] = v - q * scale
    return struct.pack(f"<{len(scales)}f", *scales) + bytes(codes), dropped


def decode_q8_delta(body: bytes, n: int) -> array:
    """The change a ``q8-delta`` body carries (the reference; the server decodes with numpy)."""
    if len(body) != encoded_size("q8-delta", n):
        raise ValueError(f"a q8-delta update of {n} parameters has {encoded_size('q8-delta', n)} bytes")
    nb = blocks(n)
    scales = struct.unpack(f"<{nb}f", body[:4 * nb])
    codes = struct.unpack(f"<{n}b", body[4 * nb:])
    return array("f", [q * scales[i // BLOCK] for i, q in enumerate(codes)])
