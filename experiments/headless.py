"""``webfl client``: headless participants in CPython, running the browser's client code.

It lives with the experiments (a CPython room), not in ``browser_py``: it reads datasets
and partitions from ``export``, which the browser wheel must not carry.

Each simulated participant gets its own store and partition, imports its images as PNG
files through the same import path the page uses, and runs rounds of local training
against a server. Participants run in threads (onnxruntime releases the GIL).
"""
from __future__ import annotations

import argparse
import asyncio
import io
import sys
import threading
import time
from pathlib import Path

import click


@click.command("client", epilog="""\b
example:
  webfl client --server http://127.0.0.1:8000 --code 1A2B3C4D --dataset mnist \\
               --clients 3 --partition lacks:1,3,7/2,5,8/4,6,9 --rounds 5""")
@click.option("--server", required=True, help="server URL, e.g. http://127.0.0.1:8000")
@click.option("--code", required=True, help="the task's join code")
@click.option("--dataset", default="mnist", show_default=True,
              help="mnist | sklearn-digits | idx:IMAGES,LABELS | folder:PATH")
@click.option("--clients", type=click.IntRange(1, 1000), default=1, show_default=True, help="how many participants")
@click.option("--partition", default="iid", show_default=True,
              help="iid | dirichlet:ALPHA | shards:K | lacks:1,3,7/2,5,8/...")
@click.option("--samples", type=click.IntRange(1), default=300, show_default=True,
              help="images per participant at most")
@click.option("--rounds", type=click.IntRange(1), default=3, show_default=True, help="training rounds per participant")
@click.option("--epochs", type=click.IntRange(1), default=None, help="local epochs (default: the task's)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--store", type=click.Path(path_type=Path), default=None,
              help="keep each participant's data in SQLite files here (default: in memory)")
def client_command(**options) -> None:
    """Run headless participants (the browser's client code, in CPython).

    Each participant joins the task, imports its share of a dataset through the page's own
    import path, and trains and sends updates for some rounds."""
    sys.exit(run(argparse.Namespace(**options)))


def encode_png(image) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def image_files(images, labels, classes: list[str]) -> list[tuple[str, bytes, str]]:
    """Dataset arrays as a participant's files: (class/n.png, PNG bytes, class)."""
    return [(f"{classes[y]}/{n}.png", encode_png(im), classes[y]) for n, (im, y) in enumerate(zip(images, labels))]


async def import_labelled(participant, files: list[tuple[str, bytes, str]]) -> None:
    """Import files through the participant's own import path, one label at a time
    (classes the task does not have are left out)."""
    for label in sorted({f[2] for f in files} & set(participant.classes)):
        await participant.import_files([(n, d) for n, d, l in files if l == label], label)


class Reviewer:
    """A simulated person in a user study: starts with some labelled images and, before each
    round, reviews a few unlabelled ones through the model's suggestions, accepting those it
    agrees with and choosing the true label otherwise. Everything goes through the page's
    code, so its action log is the one a person's page would send."""

    def __init__(self, participant, files: list[tuple[str, bytes, str]], start_labelled: int,
                 per_round: int) -> None:
        import hashlib

        self.participant, self.per_round = participant, per_round
        self.files, self.start_labelled = files, start_labelled
        self.truth = {hashlib.sha256(d).hexdigest()[:16]: label for _, d, label in files}  # the dataset's item ids

    async def import_files(self) -> None:
        await self.participant.study.answer(True)
        await import_labelled(self.participant, self.files[: self.start_labelled])
        rest = [(n, d) for n, d, _ in self.files[self.start_labelled:]]
        await self.participant.import_files(rest)

    async def review(self) -> None:
        ds = self.participant.dataset
        batch = ds.unlabelled()[: self.per_round]
        if not batch:
            return
        for item_id in await self.participant.suggest(batch):
            truth = self.truth[item_id]
            if ds.get(item_id).suggestion == truth:
                await ds.accept(item_id)
            else:
                await ds.correct(item_id, truth)


async def run_participant(index: int, args: argparse.Namespace, images, labels, classes, log) -> dict:
    from browser_py.participant import Participant
    from browser_py.protocol import FLClient
    from browser_py.stores import MemoryStore, SqliteStore

    store = SqliteStore(args.store / f"client-{index}.sqlite3") if args.store else MemoryStore()
    participant = Participant(FLClient(args.server, store), store)
    await participant.start(args.code, name=f"headless-{index}")
    await import_labelled(participant, image_files(images, labels, classes))
    log(f"participant {index}: {participant.dataset.counts()['labelled']} labelled images")
    losses = []
    for r in range(args.rounds):
        result = await participant.train_round(epochs=args.epochs, seed=args.seed + r, follow_newer=False)
        losses.append(result.epoch_losses[-1])
        log(f"participant {index} round {r + 1}/{args.rounds}: loss {losses[-1]:.3f}, "
            f"{result.ack['status']} -> version {result.ack.get('applied_version')}")
    problems = participant.extension_errors
    for message in problems:
        log(f"participant {index}: {message}\n{getattr(problems, 'tracebacks', {}).get(message, '')}".rstrip())
    return {"participant": index, "losses": losses, "extension_errors": list(problems)}


def run(args: argparse.Namespace) -> int:
    from export.datasets import DatasetError, load
    from export.partition import parse

    try:
        data = load(args.dataset)
        parts = parse(args.partition, data.labels, args.clients, args.seed)
    except (DatasetError, ValueError) as exc:
        print(f"webfl client: error: {exc}", file=sys.stderr)
        return 2
    lock = threading.Lock()
    started = time.monotonic()

    def log(line: str) -> None:
        with lock:
            print(f"[{time.monotonic() - started:6.1f}s] {line}", flush=True)

    results, errors = [], []

    import numpy as np

    def worker(i: int) -> None:
        # a random sample of the partition (partitions are sorted, and datasets often by class)
        idx = np.random.default_rng(args.seed + i).permutation(parts[i])[: args.samples]
        try:
            results.append(asyncio.run(run_participant(i, args, data.images[idx], data.labels[idx], data.classes, log)))
        except Exception as exc:  # report per participant, keep the others going
            errors.append(f"participant {i}: {type(exc).__name__}: {exc}")
            log(errors[-1])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    troubled = sum(1 for r in results if r["extension_errors"])
    log(f"done: {len(results)} participants finished, {len(errors)} failed, "
        f"{troubled} with extension errors")
    return 1 if errors or troubled else 0
