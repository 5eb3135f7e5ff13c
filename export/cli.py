"""``webfl export``: build a model bundle from the command line."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .bundle import BundleError, build_bundle
from .models import MODELS


@click.command("export", epilog="\b\nexample:\n  webfl export --model mobilenet_v2 --classes cat,dog --lr 0.01 "
               "--train-blocks 1 --out bundles/pets\n\n\bmodels:\n" + "\n".join(
                   f"  {m.name:14} {m.description} (train-blocks 0..{m.max_train_blocks})" for m in MODELS.values()))
@click.option("--model", required=True, help="model name from the zoo (see below)")
@click.option("--classes", required=True, help="comma-separated class names, in label order, e.g. cat,dog")
@click.option("--lr", type=float, default=0.001, show_default=True,
              help="learning rate baked into the optimizer graph")
@click.option("--train-blocks", type=int, default=0, show_default=True,
              help="how many of the backbone's last blocks train with the head (0 = head only)")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="bundle directory to create")
@click.option("--force", is_flag=True, help="replace an existing bundle at --out")
def export_command(model: str, classes: str, lr: float, train_blocks: int, out: Path, force: bool) -> None:
    """Build a model bundle (ONNX + training artifacts) for a task.

    A frozen feature extractor, the trainable head as onnxruntime training artifacts with the
    learning rate baked in, a full model.onnx, and manifest.json describing inputs, classes and
    the parameter layout."""
    try:
        manifest = build_bundle(model, classes.split(","), out, lr=lr, train_blocks=train_blocks, overwrite=force)
    except (BundleError, FileNotFoundError) as exc:
        click.echo(f"webfl export: error: {exc}", err=True)
        sys.exit(2)
    size = sum(f["bytes"] for f in manifest["files"].values())
    click.echo(json.dumps({"out": str(out), "model": manifest["model"], "classes": manifest["classes"],
                           "trainable_parameters": manifest["num_parameters"], "bytes": size,
                           "seconds": manifest["build_seconds"]}))
