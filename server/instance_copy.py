"""``webfl copy-instance``: copy a whole instance between storage backends.

The way from the embedded default to PostgreSQL (and back): every row (tasks, participants,
versions, updates, evaluations, settings such as the admin token's hash), every parameter
vector a row refers to, the bundles and the validation sets. The destination must be empty;
files and vectors go first and all rows in one transaction last, so an interrupted copy
leaves no rows behind and can simply be run again. Stop the server before copying.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import click

from .storage import TABLES, Storage, open_storage


class CopyError(Exception):
    pass


def open_location(where: str) -> Storage:
    """A ``postgresql://`` URL (with a throwaway local cache) or the data directory of an
    embedded instance."""
    if where.startswith(("postgresql://", "postgres://")):
        return open_storage(Path(tempfile.mkdtemp(prefix="webfl-copy-")), where)
    return open_storage(Path(where))


def copy_instance(source: Storage, dest: Storage, say=print) -> dict:
    """Copy everything from ``source`` into the empty ``dest``; counts of what was copied."""
    if dest.rows("tasks"):
        raise CopyError("the destination already has tasks; copy into an empty database or data directory")
    rows = {table: source.rows(table) for table, _ in TABLES}
    shas = source.referenced_params()
    say(f"copying {len(rows['tasks'])} task(s), {len(rows['clients'])} participant(s), "
        f"{len(rows['versions'])} version(s), {len(rows['updates'])} update(s), {len(shas)} parameter vector(s)")
    for task in rows["tasks"]:
        bundle = source.bundle_dir(task["id"], task["bundle_sha256"])
        if (bundle / "manifest.json").exists():
            if dest.files is not None:
                dest.files.put_dir(f"bundle/{task['bundle_sha256']}", bundle)
            else:
                shutil.copytree(bundle, dest.bundle_dir(task["id"], None), dirs_exist_ok=True)
        validation = source.validation_path(task["id"])
        if validation.exists():
            if dest.files is not None:
                dest.files.put(f"validation/{task['id']}", validation.read_bytes())
            else:
                target = dest.validation_path(task["id"])
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(validation.read_bytes())
    with dest.transaction() as tx:
        for sha in sorted(shas):
            if dest.params.put(source.params.get(sha)) != sha:
                raise CopyError(f"parameter vector {sha} does not match its content address")
        for table, _ in TABLES:
            dest.insert_rows(table, rows[table], tx)
        dest.db.after_copy(tx)
    return {table: len(r) for table, r in rows.items()} | {"params": len(shas)}


@click.command("copy-instance", epilog="\b\nexamples:\n"
               "  webfl copy-instance instance postgresql://webfl:secret@db:5432/webfl\n"
               "  webfl copy-instance postgresql://webfl:secret@db:5432/webfl /tmp/webfl-back")
@click.argument("source")
@click.argument("destination")
def copy_instance_command(source: str, destination: str) -> None:
    """Copy a whole instance from SOURCE to DESTINATION (each a data directory or a
    postgresql:// URL): tasks, participants, versions, updates, parameters, bundles,
    validation sets and the admin token. The destination must be empty. Stop the server
    first; then point WEBFL_DATABASE_URL (or WEBFL_DATA_DIR) at the destination."""
    try:
        counts = copy_instance(open_location(source), open_location(destination))
    except CopyError as exc:
        click.echo(f"webfl: {exc}", err=True)
        sys.exit(2)
    click.echo("webfl: copied " + ", ".join(f"{name} {n}" for name, n in counts.items()))
