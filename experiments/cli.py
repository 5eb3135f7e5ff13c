"""``webfl experiment CONFIG.toml --out DIR``."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "experiment", help="run an experiment: many clients, partitions, baselines, a report with plots",
        description="Start a server on a fresh data directory, create the task, split the dataset among "
                    "browser tabs (headless Chromium) and/or CPython clients, train for the budget, run the "
                    "baselines, and write results.json, results.csv, report.md and PNG plots to --out.",
        epilog="configs: experiments/configs/*.toml (smoke.toml runs in about a minute; attacks.toml, a config "
               "with an [attack_matrix] table, runs every aggregator against every attack)\n\n"
               "example:\n  webfl experiment experiments/configs/smoke.toml --out results/smoke",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", type=Path, help="experiment config (TOML)")
    p.add_argument("--out", type=Path, required=True, help="directory for the results")
    p.set_defaults(func=run)


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
