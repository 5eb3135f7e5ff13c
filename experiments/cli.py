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
        epilog="configs: experiments/configs/*.toml (smoke.toml runs in about a minute)")
    p.add_argument("config", type=Path, help="experiment config (TOML)")
    p.add_argument("--out", type=Path, required=True, help="directory for the results")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .config import ConfigError, load
    from .harness import run_experiment

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
