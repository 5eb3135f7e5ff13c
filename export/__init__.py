"""Turn PyTorch models into webfl model bundles (CPython only).

A bundle is the contract between export, server and client: see ``bundle.py`` and the
manifest section of the README.
"""
from .bundle import BundleError, build_bundle, load_manifest
from .models import MODELS, get_model

__all__ = ["BundleError", "MODELS", "build_bundle", "get_model", "load_manifest"]
