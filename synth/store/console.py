"""The SQL console's one way in: a single read-only statement on a read-only connection."""

from __future__ import annotations

import threading

import duckdb
import pandas as pd

from synth.kernel.errors import SynthError

# Statement types a read-only query may have (DESCRIBE, SHOW and SUMMARIZE parse as SELECT).
READ_ONLY_STATEMENTS = {"SELECT", "EXPLAIN"}


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
    kind = statements[0].type.name
    if kind not in READ_ONLY_STATEMENTS:
        raise SynthError(f"{kind} statements are not allowed here: the SQL console is read-only. "
                         "Use SELECT, WITH, DESCRIBE, SHOW, EXPLAIN or SUMMARIZE.")


class ConsoleMixin:
    """Read-only queries typed by users."""

    def query_readonly(self, sql: str, limit: int = 1000, timeout_s: float = 10.0
                       ) -> tuple[pd.DataFrame, bool]:
        """Run one read-only statement; return (rows, truncated).

        The connection is opened read-only with external access off, so file-reading functions,
        ATTACH, COPY, INSTALL and LOAD fail in DuckDB itself, whatever the statement says.
        """
        sql = (sql or "").strip().rstrip(";").strip()
        _check_read_only(sql)
        with self.connect(read_only=True, config={"enable_external_access": False}) as con:
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
                raise SynthError(f"The query failed: {exc}") from None
            finally:
                timer.cancel()
        truncated = len(rows) > limit
        return pd.DataFrame(rows[:limit], columns=columns), truncated
