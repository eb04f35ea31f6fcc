"""The SQL console's examples and result helpers."""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pytest

from synth.kernel.errors import SynthError
from synth.kernel.text import literal_markdown
from synth.outputs.sqlconsole import (
    EXAMPLES,
    displayable,
    result_caption,
    to_csv,
    unique_names,
)

# Examples that may rightly return nothing on the demo data (no judgements, failures, edits or
# repeated texts there); every other example must return rows.
MAY_BE_EMPTY_ON_DEMO = {"Judge score distribution", "Failures by error kind",
                        "Texts that occur more than once", "Edited items: every version of their text"}


def test_there_are_enough_examples():
    assert len(EXAMPLES) >= 6
    assert MAY_BE_EMPTY_ON_DEMO <= set(EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("label", list(EXAMPLES))
def test_every_example_runs_on_the_demo_data(demo_store, label):
    frame, truncated = demo_store.query_readonly(EXAMPLES[label], 1000, 10)
    assert len(frame.columns) >= 1
    assert not truncated
    if label not in MAY_BE_EMPTY_ON_DEMO:
        assert len(frame) >= 1


@pytest.mark.slow
@pytest.mark.parametrize("label", list(EXAMPLES))
def test_every_example_runs_on_an_empty_database(store, label):
    frame, _ = store.query_readonly(EXAMPLES[label], 1000, 10)
    assert len(frame.columns) >= 1


def test_the_metrics_example_has_one_row_and_column_per_run_and_metric(demo_store):
    frame, _ = demo_store.query_readonly(EXAMPLES["Metrics of every run, one column per metric"])
    assert len(frame) == len(demo_store.runs())
    assert {"distinct_2", "near_duplicate_rate", "vendi_score"} <= set(frame.columns)
    assert frame["distinct_2"].notna().all()


def test_the_latest_run_example_lists_that_runs_items(demo_store):
    frame, _ = demo_store.query_readonly(EXAMPLES["Items of the latest run with their status"])
    latest = demo_store.runs().sort_values("created_at").iloc[-1]
    assert len(frame) == latest["n_items"]
    assert set(frame["item_id"]) == set(demo_store.items([latest["run_id"]])["item_id"])


def test_the_items_per_model_example_counts_every_item(demo_store):
    frame, _ = demo_store.query_readonly(EXAMPLES["Items per model (which model made each item)"])
    assert frame["items"].sum() == demo_store.count_items()


def test_result_caption_says_whether_rows_were_cut():
    assert result_caption(1, False, 1000) == "1 row, the whole result."
    assert result_caption(1234, False, 5000) == "1,234 rows, the whole result."
    cut = result_caption(1000, True, 1000)
    assert cut.startswith("1,000 rows shown") and "cut at the row limit of 1,000" in cut


@pytest.mark.parametrize("names, expected", [
    (["a", "b"], ["a", "b"]),
    (["a", "a", "a"], ["a", "a_2", "a_3"]),
    (["a", "a", "a_2"], ["a", "a_3", "a_2"]),
    ([], []),
])
def test_unique_names(names, expected):
    assert unique_names(names) == expected


def test_displayable_makes_any_result_arrow_compatible():
    frame = pd.DataFrame([[1, 2, 2**100, "x", [1.0, 2.0]], [3, 4, None, None, None]],
                         columns=["n", "n", "h", "s", "v"])  # a HUGEINT beyond int64, and NULLs
    out = displayable(frame)
    assert list(out.columns) == ["n", "n_2", "h", "s", "v"]
    pa.Table.from_pandas(out)  # what st.dataframe does; raises on repeated names or huge ints
    assert out["h"].tolist() == [str(2**100), None]
    assert out["n"].tolist() == [1, 3] and out["v"][0] == [1.0, 2.0]
    assert list(frame.columns) == ["n", "n", "h", "s", "v"]  # the input is left alone


def test_to_csv_round_trips():
    frame = pd.DataFrame({"name": ["a, b", 'say "hi"', "ünïcode"], "n": [1, 2, 3]})
    data = to_csv(frame)
    assert data.startswith(b"name,n\n")
    pd.testing.assert_frame_equal(pd.read_csv(io.BytesIO(data)), frame, check_dtype=False)


def test_plain_escapes_markdown():
    def plain(message):
        return literal_markdown(message, keep_breaks=True)

    assert plain("SELECT * FROM no_such_table") == r"SELECT \* FROM no\_such\_table"
    assert plain("costs $1 and $2") == r"costs \$1 and \$2"
    assert plain("<b>x</b>") == "&lt;b&gt;x&lt;/b&gt;"
    assert plain("line 1\nline 2") == "line 1  \nline 2"


# -- the console connection's limits ------------------------------------------------------------

@pytest.mark.parametrize("sql", ["UPDATE EXTENSIONS", "update extensions (httpfs)"])
def test_statement_types_newer_than_the_python_enum_are_refused(store, sql):
    # duckdb's extract_statements(...).type raises ValueError on these: refused all the same.
    with pytest.raises(SynthError, match="^UPDATE statements are not allowed here: the SQL console is read-only"):
        store.query_readonly(sql)


def test_the_connection_has_the_memory_and_thread_limits_of_the_settings(store, monkeypatch):
    sql = "SELECT current_setting('memory_limit') AS memory, current_setting('threads') AS threads"
    frame, _ = store.query_readonly(sql)
    assert frame.to_dict("records") == [{"memory": "488.2 MiB", "threads": 1}]  # 512MB, 1 thread
    monkeypatch.setenv("SYNTH_SQL_MEMORY_LIMIT", "1GiB")
    monkeypatch.setenv("SYNTH_SQL_THREADS", "2")
    frame, _ = store.query_readonly(sql)
    assert frame.to_dict("records") == [{"memory": "1.0 GiB", "threads": 2}]


def test_a_query_over_the_memory_limit_is_stopped_with_a_message(store, monkeypatch):
    monkeypatch.setenv("SYNTH_SQL_MEMORY_LIMIT", "64MB")
    with pytest.raises(SynthError, match=r"^The query needs more memory than the SQL console allows \(64MB, "
                                         r"set by SYNTH_SQL_MEMORY_LIMIT\)\. Add a WHERE clause or a LIMIT"):
        store.query_readonly("SELECT len(list(x)) AS n FROM range(20000000) t(x)")
    frame, _ = store.query_readonly("SELECT len(list(x)) AS n FROM range(1000) t(x)")
    assert frame["n"].tolist() == [1000]


@pytest.mark.parametrize("variable, value, message", [
    ("SYNTH_SQL_MEMORY_LIMIT", "lots", "SYNTH_SQL_MEMORY_LIMIT='lots' is not a memory size"),
    ("SYNTH_SQL_MEMORY_LIMIT", "-1", "is not a memory size"),
    ("SYNTH_SQL_THREADS", "0", "SYNTH_SQL_THREADS must be at least 1, got 0"),
])
def test_bad_limit_settings_are_refused_by_name(store, monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SynthError, match=message):
        store.query_readonly("SELECT 1")


@pytest.mark.parametrize("timeout_s", [60.5, 300, 0, -1])
def test_a_time_limit_outside_the_allowed_range_is_refused(store, timeout_s):
    with pytest.raises(SynthError, match=f"at most 60 s, got {timeout_s:g}.*SYNTH_SQL_MAX_SECONDS"):
        store.query_readonly("SELECT 1", timeout_s=timeout_s)


def test_the_longest_time_limit_follows_its_setting(store, monkeypatch):
    assert store.query_readonly("SELECT 1 AS one", timeout_s=60)[0]["one"].tolist() == [1]
    monkeypatch.setenv("SYNTH_SQL_MAX_SECONDS", "5")
    with pytest.raises(SynthError, match="at most 5 s, got 10"):
        store.query_readonly("SELECT 1", timeout_s=10)


def test_a_timestamp_with_time_zone_is_returned_or_explained(store):
    try:
        import pytz  # noqa: F401  (duckdb needs it to turn TIMESTAMPTZ values into Python)
    except ImportError:
        with pytest.raises(SynthError, match="TIMESTAMPTZ column .* needs the pytz package"):
            store.query_readonly("SELECT TIMESTAMPTZ '2024-02-29 12:34:56+00' AS t")
    else:
        frame, _ = store.query_readonly("SELECT TIMESTAMPTZ '2024-02-29 12:34:56+00' AS t")
        assert frame["t"][0].isoformat() == "2024-02-29T12:34:56+00:00"
