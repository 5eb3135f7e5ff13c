"""User-study mode: who agreed to be recorded, and the action log exported for analysis.

A task with ``user_study`` shows its notice first. Only participants who agree have their
actions recorded: timestamps, their pseudonymous participant id (never the display name),
the global version their page held and a few bounded values per action. Images never
reach the server. The exports are what a researcher loads into pandas or R.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
from pathlib import Path

import click

from .errors import APIError, Conflict, Forbidden
from .schemas import STUDY_ACTIONS
from .storage import Storage

MAX_EVENTS_PER_PARTICIPANT = 50_000  # hours of busy labelling; bounds what one participant can make us store
EXPORT_COLUMNS = ("task_id", "participant", "event_id", "at", "received", "action", "version", "detail")


def notice_sha256(config: dict) -> str:
    return hashlib.sha256(config["study_notice"].encode()).hexdigest()


def require_study(task) -> None:
    if not task.config.get("user_study"):
        raise Conflict("this task is not a user study", "nothing about participants' actions is recorded here")


def record(storage: Storage, task, client_id: str, events: list[dict]) -> dict:
    """Store a batch from a participant who agreed; refuse (403, nothing stored) otherwise."""
    require_study(task)
    try:
        result = storage.interactions.add(task.id, client_id, events, notice_sha256(task.config),
                                          MAX_EVENTS_PER_PARTICIPANT)
    except OverflowError:
        raise APIError(f"this study keeps at most {MAX_EVENTS_PER_PARTICIPANT} actions per participant",
                       "nothing more is recorded for you; you can keep taking part", status=413) from None
    if result is None:
        raise Forbidden("you have not agreed to take part in this study, so nothing is recorded",
                        "answer the study notice on the task's page first")
    stored, duplicates = result
    return {"stored": stored, "duplicates": duplicates}


def rows(storage: Storage, task_id: str) -> list[dict]:
    """The task's events as export rows (the participant id is the pseudonym, never the name)."""
    return [{"task_id": task_id, "participant": r["client_id"], "event_id": r["event_id"], "at": r["at"],
             "received": r["received"], "action": r["action"], "version": r["version"], "detail": r["detail"]}
            for r in storage.interactions.for_task(task_id)]


def export(storage: Storage, task_id: str, fmt: str) -> str:
    """The log as ``csv`` (detail as a JSON column) or ``jsonl`` (one object per line)."""
    events = rows(storage, task_id)
    if fmt == "jsonl":
        return "".join(json.dumps(e, sort_keys=True) + "\n" for e in events)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for e in events:
        writer.writerow(e | {"detail": json.dumps(e["detail"], sort_keys=True)})
    return buf.getvalue()




@click.command("study-export", epilog="""\b
examples:
  webfl study-export 3f2a... --out study.csv
  webfl study-export 3f2a... --format jsonl > study.jsonl
  WEBFL_DATABASE_URL=postgresql://webfl:secret@db/webfl webfl study-export 3f2a... --out study.csv""")
@click.argument("task_id")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True,
              help="CSV (detail as a JSON column) or JSON Lines")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write here instead of standard output")
def study_export_command(task_id: str, fmt: str, out: Path | None) -> None:
    """Export a user-study task's action log (the admin page's download, from the command line).

    Reads the instance named by WEBFL_DATA_DIR or WEBFL_DATABASE_URL; the server may keep running."""
    from .config import from_environment
    from .storage import open_storage

    config = from_environment()
    storage = open_storage(Path(config["DATA_DIR"]), config["DATABASE_URL"])
    try:
        if storage.tasks.get(task_id) is None:
            click.echo(f"webfl: no task {task_id!r} here; the admin page lists each task's id", err=True)
            sys.exit(2)
        text = export(storage, task_id, fmt)
    finally:
        storage.close()
    events = max(0, text.count("\n") - (1 if fmt == "csv" else 0))
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        click.echo(f"webfl: {events} events written to {out}")
