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


def open_location(where: str) -> tuple[Storage, Path]:
    """A ``postgresql://`` URL or the data directory of an embedded instance."""
    if where.startswith(("postgresql://", "postgres://")):
        cache = Path(tempfile.mkdtemp(prefix="webfl-copy-"))
        return open_storage(cache, where), cache
    return open_storage(Path(where)), Path(where)


def _bundle_dir(storage: Storage, data_dir: Path, task: dict) -> Path | None:
    if storage.files is not None:
        return storage.files.local_dir(f"bundle/{task['bundle_sha256']}") if task["bundle_sha256"] else None
    found = data_dir / "bundles" / task["id"]
    return found if (found / "manifest.json").exists() else None


def _validation(storage: Storage, data_dir: Path, task_id: str) -> bytes | None:
    if storage.files is not None:
        return storage.files.get(f"validation/{task_id}")
    path = data_dir / "validation" / f"{task_id}.npz"
    return path.read_bytes() if path.exists() else None


def copy_instance(source: Storage, source_dir: Path, dest: Storage, dest_dir: Path, say=print) -> dict:
    """Copy everything from ``source`` into the empty ``dest``; counts of what was copied."""
    if dest.rows("tasks"):
        raise CopyError("the destination already has tasks; copy into an empty database or data directory")
    rows = {table: source.rows(table) for table, _ in TABLES}
    shas = source.referenced_params()
    say(f"copying {len(rows['tasks'])} task(s), {len(rows['clients'])} participant(s), "
        f"{len(rows['versions'])} version(s), {len(rows['updates'])} update(s), {len(shas)} parameter vector(s)")
    for task in rows["tasks"]:
        bundle = _bundle_dir(source, source_dir, task)
        if bundle is not None:
            if dest.files is not None:
                dest.files.put_dir(f"bundle/{task['bundle_sha256']}", bundle)
            else:
                shutil.copytree(bundle, dest_dir / "bundles" / task["id"], dirs_exist_ok=True)
        validation = _validation(source, source_dir, task["id"])
        if validation is not None:
            if dest.files is not None:
                dest.files.put(f"validation/{task['id']}", validation)
            else:
                (dest_dir / "validation").mkdir(parents=True, exist_ok=True)
                (dest_dir / "validation" / f"{task['id']}.npz").write_bytes(validation)
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
    src, src_dir = open_location(source)
    dst, dst_dir = open_location(destination)
    try:
        counts = copy_instance(src, src_dir, dst, dst_dir)
    except CopyError as exc:
        click.echo(f"webfl: {exc}", err=True)
        sys.exit(2)
    click.echo("webfl: copied " + ", ".join(f"{name} {n}" for name, n in counts.items()))
