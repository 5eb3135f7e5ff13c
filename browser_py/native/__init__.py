"""The CPython twins of the browser adapters: image decoding with Pillow and training with
onnxruntime-training. They run wherever the client runs outside a browser (headless
participants, experiments) and are shared with export and the server, so every side decodes
and scores images the same way. The browser wheel does not carry this package.
"""
