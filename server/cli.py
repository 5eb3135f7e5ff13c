"""The ``webfl`` command.

Built with click. Each room registers its own subcommands as entry points in the
``webfl.commands`` group (see pyproject.toml): ``run`` and ``reset-admin-token`` (server),
``export`` (export), ``experiment`` and ``client`` (experiments). This module imports none of
them until one is asked for, so no room depends on another to add a subcommand.
"""
from __future__ import annotations

import sys
from importlib.metadata import entry_points

import click

GROUP = "webfl.commands"


class RoomCommands(click.Group):
    """Subcommands found through entry points, loaded on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({ep.name for ep in entry_points(group=GROUP)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
        return found[0].load() if found else None


@click.group(cls=RoomCommands, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="\b\nStart here:\n  make run            (sets everything up, then runs `webfl run`)\n"
                    "  webfl COMMAND --help")
def webfl() -> None:
    """Interactive federated learning in the browser.

    Participants train in their own browser; the server merges their updates."""


def main(argv: list[str] | None = None) -> int:
    return webfl.main(args=argv, prog_name="webfl")


if __name__ == "__main__":
    sys.exit(main())
