"""Settings: one table feeds the app config, the environment (``WEBFL_*``) and ``--help``."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Setting:
    name: str
    default: object
    help: str

    @property
    def env(self) -> str:
        return f"WEBFL_{self.name}"


SETTINGS = (
    Setting("HOST", "127.0.0.1", "address to listen on"),
    Setting("PORT", 8000, "port to listen on"),
    Setting("DATA_DIR", str(ROOT / "instance"),
            "where the SQLite database, bundles and parameters live (with PostgreSQL: a local cache)"),
    Setting("DATABASE_URL", "", "postgresql://user:password@host:port/dbname to share state between processes "
            "(empty: embedded SQLite under the data dir)"),
    Setting("WORKERS", 1, "gunicorn worker processes (more than 1 needs WEBFL_DATABASE_URL)"),
    Setting("WWW_DIR", str(ROOT / "www"), "static pages, CSS, the JS bootstrap and vendor/"),
    Setting("EXTENSIONS_DIR", str(ROOT / "extensions"), "client extensions tasks may name (module.py or package/)"),
    Setting("MAX_UPDATE_BYTES", 64 * 1024 * 1024, "largest request body accepted, in bytes"),
    Setting("THREADS", 8, "worker threads of the WSGI server"),
    Setting("ADMIN_TOKEN", "", "use this admin token at first start instead of generating one (automation)"),
    Setting("JOINS_PER_MINUTE", 30, "joins accepted per minute from one address"),
    Setting("TICK_SECONDS", 1, "how often synchronous rounds check their deadline (0 = never)"),
)


def _coerce(default: object, raw: str) -> object:
    return int(raw) if isinstance(default, int) else raw


def from_environment(overrides: dict | None = None) -> dict:
    """Defaults, then ``WEBFL_*`` variables, then explicit overrides (tests)."""
    config = {s.name: s.default for s in SETTINGS}
    for s in SETTINGS:
        if s.env in os.environ:
            config[s.name] = _coerce(s.default, os.environ[s.env])
    config.update(overrides or {})
    return config
