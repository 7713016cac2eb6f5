"""Persistent response cache in SQLite, safe for many concurrent writers across processes.

Keyed by `LLMRequest.cache_key(provider, model)`, which hashes everything that changes the answer
(provider, model, system, messages, sampling parameters, sample index). Only successful answers are
stored; errors are never cached.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from msmkit.llm.types import LLMResponse

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""


class ResponseCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection per thread: sqlite3 connections must not cross threads.
        self._local = threading.local()
        with self._connect() as connection:
            connection.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=60000")
            self._local.connection = connection
        return connection

    def get(self, key: str) -> LLMResponse | None:
        row = self._connect().execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        response = LLMResponse.model_validate_json(row[0])
        return response.model_copy(update={"cached": True})

    def put(self, key: str, response: LLMResponse) -> None:
        value = response.model_copy(update={"cached": False}).model_dump_json()
        self._connect().execute(
            "INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)",
            (key, value, time.time()),
        )

    def __len__(self) -> int:
        return int(self._connect().execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def dumps_key_material(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False)
