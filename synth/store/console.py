"""The SQL console's one way in: a single read-only statement on a read-only connection."""

from __future__ import annotations

import re
import threading

import duckdb
import pandas as pd

from synth.kernel import settings
from synth.kernel.errors import SynthError

# Statement types a read-only query may have (DESCRIBE, SHOW and SUMMARIZE parse as SELECT).
READ_ONLY_STATEMENTS = {"SELECT", "EXPLAIN"}
# DuckDB's memory_limit: a number and a unit (1000- or 1024-based), or a share of the machine's memory.
MEMORY_SIZE = re.compile(r"\d+(\.\d+)?\s*([KMGT]i?B|B|%)", re.IGNORECASE)
DEFAULT_TIMEOUT_S = 10.0  # the console's time limit unless the page or the CLI says otherwise


def _check_read_only(sql: str) -> None:
    """Refuse anything but exactly one SELECT-like statement, naming the rule broken."""
    if not sql:
        raise SynthError("The query is empty. Write one SELECT statement, e.g. "
                         "SELECT name, n_items FROM runs.")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise SynthError(f"The query does not parse: {exc}") from None
    if len(statements) != 1:
        raise SynthError("Give exactly one statement (no ';'-separated lists).")
    try:
        kind = statements[0].type.name
    except ValueError:  # a statement type newer than duckdb's Python enum (UPDATE EXTENSIONS, say)
        kind = sql.split()[0].upper()
    if kind not in READ_ONLY_STATEMENTS:
        raise SynthError(f"{kind} statements are not allowed here: the SQL console is read-only. "
                         "Use SELECT, WITH, DESCRIBE, SHOW, EXPLAIN or SUMMARIZE.")


def _check_time_limit(timeout_s: float) -> None:
    longest = settings.get("sql_max_seconds")
    if not 0 < timeout_s <= longest:
        raise SynthError(f"The time limit must be more than 0 and at most {longest:g} s, got {timeout_s:g}. "
                         "Give a shorter one (the longest is set by SYNTH_SQL_MAX_SECONDS).")


def console_config() -> dict:
    """The console connection's DuckDB settings: no file or network access, and the memory and
    threads the settings allow, so one query cannot take the machine the app runs on."""
    memory, threads = str(settings.get("sql_memory_limit")).strip(), settings.get("sql_threads")
    if not MEMORY_SIZE.fullmatch(memory):
        raise SynthError(f"SYNTH_SQL_MEMORY_LIMIT={memory!r} is not a memory size: give one like 512MB or 2GB "
                         "(KB, MB, GB, TB; KiB, MiB, GiB, TiB; or a % of the machine's memory).")
    if threads < 1:
        raise SynthError(f"SYNTH_SQL_THREADS must be at least 1, got {threads}.")
    return {"enable_external_access": False, "memory_limit": memory, "threads": threads}


def _failure(exc: duckdb.Error) -> SynthError:
    if isinstance(exc, duckdb.OutOfMemoryException):
        return SynthError(f"The query needs more memory than the SQL console allows "
                          f"({settings.get('sql_memory_limit')}, set by SYNTH_SQL_MEMORY_LIMIT). "
                          "Add a WHERE clause or a LIMIT, or aggregate before collecting lists.")
    if "Required module 'pytz'" in str(exc):  # duckdb turns TIMESTAMPTZ values into Python with pytz
        return SynthError("The result has a TIMESTAMPTZ column (now() is one), which needs the pytz "
                          "package: pip install pytz, or cast the column, e.g. now()::TIMESTAMP.")
    return SynthError(f"The query failed: {exc}")


class ConsoleMixin:
    """Read-only queries typed by users."""

    def query_readonly(self, sql: str, limit: int = 1000, timeout_s: float = DEFAULT_TIMEOUT_S
                       ) -> tuple[pd.DataFrame, bool]:
        """Run one read-only statement; return (rows, truncated).

        The connection is opened read-only with external access off, so file-reading functions,
        ATTACH, COPY, INSTALL and LOAD fail in DuckDB itself, whatever the statement says; its
        memory and threads are capped (SYNTH_SQL_MEMORY_LIMIT, SYNTH_SQL_THREADS) and so is the
        time limit (SYNTH_SQL_MAX_SECONDS).
        """
        sql = (sql or "").strip().rstrip(";").strip()
        _check_read_only(sql)
        _check_time_limit(timeout_s)
        with self.connect(read_only=True, config=console_config()) as con:
            timer = threading.Timer(timeout_s, con.interrupt)
            timer.start()
            try:
                cursor = con.execute(sql)
                columns = [d[0] for d in cursor.description] if cursor.description else []
                rows = cursor.fetchmany(limit + 1)
            except duckdb.InterruptException:
                raise SynthError(f"The query ran longer than {timeout_s:g} s and was stopped. "
                                 "Add a WHERE clause or a LIMIT.") from None
            except duckdb.Error as exc:
                raise _failure(exc) from None
            finally:
                timer.cancel()
        truncated = len(rows) > limit
        return pd.DataFrame(rows[:limit], columns=columns), truncated
