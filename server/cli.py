"""The ``webfl`` command: one entry point with a subcommand per job."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from browser_py.headless import add_parser as add_client
    from experiments.cli import add_parser as add_experiment
    from export.cli import add_parser as add_export

    from . import serve

    parser = argparse.ArgumentParser(
        prog="webfl",
        description="Interactive federated learning in the browser. "
                    "Participants train in their own browser; the server merges their updates.",
        epilog="Start here: `make run` (sets everything up, then runs `webfl run`).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve.add_parser(sub)
    add_export(sub)
    add_client(sub)
    add_experiment(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
