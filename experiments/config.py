"""Experiment configs (TOML): what to run, with defaults and readable errors.

A config names the data and its split, the task, one or more runs (aggregator + which
clients), a budget and the baselines; see experiments/configs/*.toml and the README.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from export.partition import lacking_groups


class ConfigError(ValueError):
    pass


@dataclass
class Dropout:
    client: int
    at: float       # seconds after the run started
    duration: float  # how long it stays away before rejoining


@dataclass
class Clients:
    browser: int = 0
    cpython: int = 0
    slowdown: list[float] = field(default_factory=list)  # seconds between rounds, per client
    dropout: list[Dropout] = field(default_factory=list)
    browser_mode: str = "browsers"  # each browser participant in its own Chromium, or "tabs" of one

    @property
    def total(self) -> int:
        return self.browser + self.cpython


@dataclass
class Poison:
    """A misbehaving client: ``scale`` multiplies its change by ``factor``; ``random``
    sends Gaussian noise of standard deviation ``factor`` instead of its parameters."""

    client: int
    kind: str
    factor: float


@dataclass
class Run:
    name: str
    aggregator: dict
    clients: Clients
    extensions: list[dict] = field(default_factory=list)  # client extensions for this run's task
    poison: list[Poison] = field(default_factory=list)
    # This run's own budget, where equal work means different version counts (a FedAvg round
    # merges every client's update, a FedAsync version one); None: the experiment's.
    seconds: float | None = None
    versions: int | None = None
    task: dict = field(default_factory=dict)  # this run's task settings over the experiment's [task]


@dataclass
class Experiment:
    name: str
    seed: int
    dataset: str
    partition: str
    test_fraction: float
    samples_per_client: int
    task: dict
    runs: list[Run]
    seconds: float
    versions: int
    target_accuracy: float | None
    baselines: list[str]
    baseline_epochs: int
    missing: list[list[str]]  # per client, the classes it lacks (from a lacks: partition)
    path: Path | None = None
    stop_at_target: bool = False  # default: a fixed budget, so results say where learning settles
    test_set: str = "split"  # "split": test_fraction of the data held out; "official": the dataset's own
    reference: dict | None = None  # a published result to print beside ours: {source, accuracy, setting}

    def budget(self, run: Run) -> tuple[float, int]:
        """(seconds, versions) for one run: its own budget where it sets one."""
        return (run.seconds if run.seconds is not None else self.seconds,
                run.versions if run.versions is not None else self.versions)


BASELINES = ("isolated", "centralised")


def _clients(raw: dict, where: str) -> Clients:
    try:
        drops = [Dropout(int(d["client"]), float(d["at"]), float(d["for"])) for d in raw.get("dropout", [])]
        c = Clients(int(raw.get("browser", 0)), int(raw.get("cpython", 0)),
                    [float(v) for v in raw.get("slowdown", [])], drops, str(raw.get("browser_mode", "browsers")))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: bad clients section ({exc}); see experiments/configs/smoke.toml") from None
    if c.browser_mode not in ("browsers", "tabs"):
        raise ConfigError(f"{where}: browser_mode must be \"browsers\" (one Chromium each) or \"tabs\" (one Chromium)")
    if c.total < 1:
        raise ConfigError(f"{where}: at least one client (browser or cpython) is needed")
    if any(d.client >= c.total for d in drops):
        raise ConfigError(f"{where}: dropout names a client that does not exist")
    return c


def load(path: str | Path) -> Experiment:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    data, task, budget = raw.get("data", {}), dict(raw.get("task", {})), raw.get("budget", {})
    default_clients = _clients(raw.get("clients", {"cpython": 1}), "clients")
    runs = []
    for i, r in enumerate(raw.get("runs", [{"name": "fedasync"}])):
        try:
            poison = [Poison(int(p["client"]), str(p["kind"]), float(p.get("factor", 10.0)))
                      for p in r.get("poison", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"runs[{i}]: bad poison entry ({exc})") from None
        if any(p.kind not in ("scale", "random") for p in poison):
            raise ConfigError(f"runs[{i}]: poison kind must be scale or random")
        own = r.get("budget", {})
        try:
            seconds = float(own["seconds"]) if "seconds" in own else None
            versions = int(own["versions"]) if "versions" in own else None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"runs[{i}]: bad budget ({exc})") from None
        runs.append(Run(str(r.get("name", f"run{i}")), dict(r.get("aggregator", {"name": "fedasync"})),
                        _clients(r["clients"], f"runs[{i}]") if "clients" in r else default_clients,
                        list(r.get("task_extensions", [])), poison, seconds, versions, dict(r.get("task", {}))))
    baselines = list(raw.get("baselines", []))
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ConfigError(f"unknown baseline(s) {unknown}; choose from {list(BASELINES)}")
    partition = str(data.get("partition", "iid"))
    missing: list[list[str]] = lacking_groups(partition) or []
    for run in runs:
        if missing and len(missing) != run.clients.total:
            raise ConfigError(f"run {run.name}: the partition names {len(missing)} clients but the run has "
                              f"{run.clients.total}")
    exp = Experiment(
        name=str(raw.get("name", path.stem)), seed=int(raw.get("seed", 0)),
        dataset=str(data.get("dataset", "mnist")), partition=partition,
        test_fraction=float(data.get("test_fraction", 0.2)),
        samples_per_client=int(data.get("samples_per_client", 0)),
        task=task, runs=runs, seconds=float(budget.get("seconds", 120)),
        versions=int(budget.get("versions", 10**9)),
        target_accuracy=(float(budget["target_accuracy"]) if "target_accuracy" in budget else None),
        baselines=baselines, baseline_epochs=int(raw.get("baseline_epochs", 10)), missing=missing, path=path,
        stop_at_target=bool(budget.get("stop_at_target", False)),
        test_set=str(data.get("test_set", "split")), reference=raw.get("reference"))
    if exp.test_set not in ("split", "official"):
        raise ConfigError('data.test_set must be "split" (hold out test_fraction) or "official" '
                          "(the dataset's own test set)")
    if exp.reference is not None and not (isinstance(exp.reference, dict)
                                          and isinstance(exp.reference.get("accuracy"), float)):
        raise ConfigError("reference needs at least accuracy = 0.881 (and source, setting as text)")
    if exp.stop_at_target and exp.target_accuracy is None:
        raise ConfigError("budget.stop_at_target needs budget.target_accuracy")
    if not 0 < exp.test_fraction < 1:
        raise ConfigError("data.test_fraction must be between 0 and 1")
    return exp
