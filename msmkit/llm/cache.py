"""Persistent response cache in SQLite, safe for many concurrent writers across processes.

Keyed by `LLMClient.cache_key`: the request (system, messages, sampling parameters, sample index)
joined with `LLMConfig.answer_identity()` (provider, model, endpoint, chat or completion mode, local
weights' content). Only successful answers are stored; errors are never cached.

Answers put from an event loop are written together at the end of that loop iteration, in one
transaction (one commit for the dozens that arrive at once under high concurrency, instead of one
each); they are served from memory until then, and the write happens before the loop waits on
anything, so no answer is left unwritten while the client waits for the network.

The file records the key scheme it was written under (table `meta`, row `schema_version`). A file from
an older scheme (keys that did not name the endpoint, mode or weights) cannot tell whose answers it
holds: its answers are dropped, once, with a warning, and never served. A file from a newer msmkit is
refused with an error naming it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from pathlib import Path

from msmkit.errors import MsmError
from msmkit.llm.types import LLMResponse

logger = logging.getLogger(__name__)

# 1: provider + model name + request (no version row). 2: answer identity + request.
SCHEMA_VERSION = 2

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
        self._prepare(self._connect())
        self._pending: dict[str, tuple[str, float]] = {}  # key -> (answer JSON, time), not yet written
        self._pending_lock = threading.Lock()
        self._flush_scheduled = False

    def _prepare(self, connection: sqlite3.Connection) -> None:
        """Create the tables, or bring an old file to the current key scheme (in one write transaction,
        so concurrent openers agree)."""
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = connection.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
            has_responses = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'responses'").fetchone() is not None
            version = int(row[0]) if row is not None else (1 if has_responses else SCHEMA_VERSION)
            if version > SCHEMA_VERSION:
                raise MsmError(f"{self.path}: this response cache was written by a newer msmkit (key scheme "
                               f"{version}, this one reads {SCHEMA_VERSION}); upgrade msmkit or set another "
                               "`cache_path`")
            if version < SCHEMA_VERSION and has_responses:
                dropped = connection.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
                connection.execute("DROP TABLE responses")
                logger.warning("%s: response cache from key scheme %d, whose keys did not name the endpoint, "
                               "chat/completion mode or local weights; its %d answers cannot be told apart and "
                               "were dropped (they will be asked again)", self.path, version, dropped)
            connection.execute(_SCHEMA)
            connection.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('schema_version', ?)",
                               (str(SCHEMA_VERSION),))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

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
        pending = self._pending.get(key)
        if pending is not None:
            value = pending[0]
        else:
            row = self._connect().execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            value = row[0]
        response = LLMResponse.model_validate_json(value)
        response.cached = True
        return response

    def put(self, key: str, response: LLMResponse) -> None:
        value = (response.model_copy(update={"cached": False}) if response.cached else response).model_dump_json()
        with self._pending_lock:
            self._pending[key] = (value, time.time())
            if self._flush_scheduled:
                return
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            self._flush_scheduled = loop is not None
        if loop is None:
            self.flush()
        else:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write every pending answer now (one transaction)."""
        with self._pending_lock:
            pending, self._pending = self._pending, {}
            self._flush_scheduled = False
        if not pending:
            return
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany("INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)",
                                   [(key, value, created) for key, (value, created) in pending.items()])
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            logger.warning("%s: could not store %d answers in the response cache (%s); the runs' own logs keep "
                           "them, a rerun elsewhere would ask again", self.path, len(pending), exc)

    def __len__(self) -> int:
        self.flush()
        return int(self._connect().execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        self.flush()
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
