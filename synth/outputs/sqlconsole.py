"""The SQL console: example queries over the documented schema, and how a result is shown.

Reads and writes nothing: the page runs queries with ``DuckStore.query_readonly`` and uses these
pure helpers to fill the editor, label the result and make it displayable and downloadable.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from synth.kernel.text import is_missing
from synth.store.console import DEFAULT_TIMEOUT_S

__all__ = ["DEFAULT_TIMEOUT_S", "EXAMPLES", "displayable", "result_caption", "to_csv", "unique_names"]

# Example queries over the schema in README.md, in menu order (label -> SQL). Each one runs on any
# database of the current schema, empty tables included.
EXAMPLES: dict[str, str] = {
    "Runs with item counts, tokens and cost": """\
SELECT r.name, r.technique, r.model, r.status, count(i.item_id) AS items,
       r.tokens_in, r.tokens_out, r.tokens_in + r.tokens_out AS tokens_total,
       r.cost_usd, r.n_failed, r.created_at
FROM runs r LEFT JOIN items i USING (run_id)
GROUP BY ALL
ORDER BY r.created_at""",
    "Metrics of every run, one column per metric": """\
SELECT r.name AS run,
       max(m.value) FILTER (WHERE m.name = 'count') AS count,
       max(m.value) FILTER (WHERE m.name = 'distinct_2') AS distinct_2,
       max(m.value) FILTER (WHERE m.name = 'near_duplicate_rate') AS near_duplicate_rate,
       max(m.value) FILTER (WHERE m.name = 'vendi_score') AS vendi_score,
       max(m.value) FILTER (WHERE m.name = 'mean_pairwise_cosine_distance') AS mean_pairwise_cosine_distance,
       max(m.computed_at) AS computed_at
FROM runs r LEFT JOIN metrics m USING (run_id)
GROUP BY r.run_id, r.name, r.created_at
ORDER BY r.created_at""",
    "Items of the latest run with their status": """\
SELECT i.idx, i.status, i.version, i.valid, i.text, i.item_id
FROM items i
WHERE i.run_id = (SELECT run_id FROM runs ORDER BY created_at DESC, run_id DESC LIMIT 1)
ORDER BY i.idx""",
    "Prompt versions per prompt name": """\
SELECT p.name, p.version, count(r.run_id) AS runs, p.created_at, p.prompt_id, p.template
FROM prompts p LEFT JOIN runs r USING (prompt_id)
GROUP BY ALL
ORDER BY p.name, p.version""",
    "Items per model (which model made each item)": """\
SELECT coalesce(i.model, '(unknown)') AS model, r.technique, count(*) AS items,
       count(DISTINCT i.run_id) AS runs, min(i.created_at) AS first_made, max(i.created_at) AS last_made
FROM items i JOIN runs r USING (run_id)
GROUP BY ALL
ORDER BY items DESC, model""",
    "Review status per run": """\
SELECT r.name AS run, i.status, count(*) AS items
FROM items i JOIN runs r USING (run_id)
GROUP BY ALL
ORDER BY any_value(r.created_at), r.name, i.status""",
    "Judge score distribution": """\
SELECT j.judge_model, j.score, count(*) AS judgements, count(DISTINCT j.item_id) AS items,
       count(*) FILTER (WHERE NOT j.valid) AS invalid
FROM judgements j
GROUP BY ALL
ORDER BY j.judge_model, j.score NULLS LAST""",
    "Failures by error kind": """\
SELECT r.name AS run, f.error_kind, count(*) AS failures, max(f.attempts) AS max_attempts,
       any_value(f.message) AS example_message
FROM failures f JOIN runs r USING (run_id)
GROUP BY ALL
ORDER BY failures DESC, run""",
    "The 10 longest items": """\
SELECT length(i.text) AS characters, len(regexp_split_to_array(trim(i.text), '\\s+')) AS words,
       r.name AS run, i.text, i.item_id
FROM items i JOIN runs r USING (run_id)
ORDER BY characters DESC, i.item_id
LIMIT 10""",
    "Texts that occur more than once": """\
SELECT count(*) AS copies, count(DISTINCT i.run_id) AS runs, any_value(i.text) AS text
FROM items i
GROUP BY i.text_hash
HAVING count(*) > 1
ORDER BY copies DESC, text""",
    "Edited items: every version of their text": """\
SELECT v.item_id, v.version, v.status, v.note, v.created_at, v.text
FROM item_versions v
ORDER BY v.item_id, v.version""",
    "Tables and their columns": """\
SELECT table_name, column_name, data_type
FROM information_schema.columns
WHERE table_schema = 'main'
ORDER BY table_name, ordinal_position""",
}

# Markdown and Streamlit's own markup (LaTeX, :emoji:, colour directives) are escaped in messages.


def result_caption(n_rows: int, truncated: bool, limit: int) -> str:
    """The line under a result: how many rows, and whether the row limit cut them."""
    rows = f"{n_rows:,} row{'' if n_rows == 1 else 's'}"
    if truncated:
        return f"{rows} shown: the result was cut at the row limit of {limit:,}. Raise the limit to see more."
    return f"{rows}, the whole result."


def displayable(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with unique column names and every column convertible to Arrow.

    SQL allows repeated names (``SELECT * FROM a JOIN b``) and values Arrow cannot hold as such
    (a HUGEINT or UBIGINT beyond int64, mixed types); those columns become text.
    """
    out = frame.copy()
    out.columns = unique_names([str(c) for c in frame.columns])
    for column in out.columns:
        try:
            pa.array(out[column], from_pandas=True)
        except (pa.ArrowException, OverflowError, TypeError, ValueError):
            out[column] = pd.Series([_text(v) for v in out[column]], index=out.index, dtype=object)
    return out


def _text(value) -> str | None:
    return None if is_missing(value) else str(value)


def unique_names(names: list[str]) -> list[str]:
    """Repeated names get a suffix, ``a, a, a`` -> ``a, a_2, a_3``, never one that another column has."""
    taken, seen, out = set(names), set(), []
    for name in names:
        new, k = name, 1
        while new in seen or (new != name and new in taken):
            k += 1
            new = f"{name}_{k}"
        seen.add(new)
        out.append(new)
    return out


def to_csv(frame: pd.DataFrame) -> bytes:
    """The result as UTF-8 CSV with a header row (the query's own column names) and no index."""
    return frame.to_csv(index=False).encode("utf-8")


