"""``webfl export``: build a model bundle from the command line."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .bundle import BundleError, build_bundle
from .models import MODELS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="build a model bundle (ONNX + training artifacts) for a task",
        description="Build a webfl model bundle: a frozen feature extractor, the trainable head as "
                    "onnxruntime training artifacts with the learning rate baked in, a full model.onnx, "
                    "and manifest.json describing inputs, classes and the parameter layout.",
        epilog="example: webfl export --model mobilenet_v2 --classes cat,dog --lr 0.01 "
               "--train-blocks 1 --out bundles/pets\n\nmodels:\n" + "\n".join(
                   f"  {m.name:14} {m.description} (train-blocks 0..{m.max_train_blocks})"
                   for m in MODELS.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model name from the zoo (see below)")
    p.add_argument("--classes", required=True,
                   help="comma-separated class names, in label order, e.g. cat,dog")
    p.add_argument("--lr", type=float, default=0.001,
                   help="learning rate baked into the optimizer graph (default: 0.001)")
    p.add_argument("--train-blocks", type=int, default=0,
                   help="how many of the backbone's last blocks train with the head (default: 0 = head only)")
    p.add_argument("--out", required=True, type=Path, help="bundle directory to create")
    p.add_argument("--force", action="store_true", help="replace an existing bundle at --out")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        manifest = build_bundle(args.model, args.classes.split(","), args.out, lr=args.lr,
                                train_blocks=args.train_blocks, overwrite=args.force)
    except (BundleError, FileNotFoundError) as exc:
        print(f"webfl export: error: {exc}", file=sys.stderr)
        return 2
    size = sum(f["bytes"] for f in manifest["files"].values())
    print(json.dumps({"out": str(args.out), "model": manifest["model"], "classes": manifest["classes"],
                      "trainable_parameters": manifest["num_parameters"], "bytes": size,
                      "seconds": manifest["build_seconds"]}))
    return 0
