"""``webfl experiment CONFIG.toml --out DIR``."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import click


@click.command("experiment", epilog="""\b
configs: experiments/configs/*.toml
  smoke.toml          about a minute: browser tabs and a CPython client
  flower_mnist.toml   the Flower article's split, every strategy
  attacks.toml        (an [attack_matrix] table) every aggregator against every attack

\b
example:
  webfl experiment experiments/configs/smoke.toml --out results/smoke""")
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="directory for the results")
def experiment_command(config: Path, out: Path) -> None:
    """Run an experiment: many clients, partitions, baselines, a report with plots.

    Starts a server on a fresh data directory, creates the task, splits the dataset among browser
    tabs (headless Chromium) and/or CPython clients, trains for the budget, runs the baselines,
    and writes results.json, results.csv, report.md and PNG plots to --out."""
    sys.exit(run(argparse.Namespace(config=config, out=out)))


def run(args: argparse.Namespace) -> int:
    from . import attacks
    from .config import ConfigError, load
    from .harness import run_experiment

    if args.config.exists() and attacks.is_matrix_config(args.config):
        return run_attack_matrix(args)

    try:
        exp = load(args.config)
    except ConfigError as exc:
        print(f"webfl experiment: error: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {line}", flush=True)

    run_experiment(exp, args.out, log)
    log(f"report: {args.out / 'report.md'}")
    return 0


def run_attack_matrix(args: argparse.Namespace) -> int:
    from . import attacks

    try:
        cfg = attacks.MatrixConfig.from_toml(args.config)
    except (ValueError, TypeError) as exc:
        print(f"webfl experiment: error: {exc}", file=sys.stderr)
        return 2
    cells = attacks.run_matrix(cfg)
    attacks.write_report(cells, cfg, args.out)
    print(attacks.table(cells, cfg.tolerance))
    print(f"report: {args.out / 'report.md'}")
    failed = [v for v in attacks.verdicts(cells, cfg.tolerance).values() if v == "FAILED"]
    return 1 if failed else 0
