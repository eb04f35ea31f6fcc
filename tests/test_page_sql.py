"""The SQL console page, headless through AppTest, on a copy of the demo database."""

from __future__ import annotations

import pytest
import streamlit as st
from conftest import ROOT
from streamlit.testing.v1 import AppTest

import pages.shell
from synth.outputs.sqlconsole import EXAMPLES

TIMEOUT = 240
SLOW_QUERY = "SELECT count(*) FROM range(1000000000) a, range(1000000) b"


@pytest.fixture
def sql_page(monkeypatch):
    """The app opened on the SQL console page.

    The page is listed in the app's navigation only once ``app_pages()`` names it; until then this
    adds it, so the page runs exactly as it will from the menu. (``AppTest.from_file`` on the page
    file itself cannot work: ``require_app()`` then resolves the app's relative page paths against
    ``pages/`` and would run the default page anyway.)
    """
    real = pages.shell.app_pages

    def with_sql_page() -> list:
        listed = real()
        if not any(page.url_path == "sql" for page in listed):
            listed.append(st.Page("pages/sql.py", title="SQL console", icon=":material/database:", url_path="sql"))
        return listed

    monkeypatch.setattr(pages.shell, "app_pages", with_sql_page)

    def open_page() -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
        at.run()
        at.switch_page("pages/sql.py").run()
        assert not at.exception
        return at

    return open_page


def run_sql(at: AppTest, sql: str, limit: int | None = None) -> AppTest:
    at.text_area(key="sql_query").set_value(sql)
    if limit is not None:
        at.number_input(key="sql_limit").set_value(limit)
    return at.button(key="sql_run").click().run()


def downloads(at: AppTest) -> list:
    return at.get("download_button")


def test_page_loads_with_its_widgets(demo_store, sql_page):
    at = sql_page()
    assert at.title[0].value == "SQL console"
    note = at.caption[0].value
    assert "SELECT, WITH, DESCRIBE, SHOW, EXPLAIN and SUMMARIZE" in note
    assert all(word in note for word in ("ATTACH", "COPY", "INSTALL", "LOAD", "read-only", "external access"))
    example = at.selectbox(key="sql_example")
    assert example.options == list(EXAMPLES)
    assert at.text_area(key="sql_query").value == EXAMPLES[example.value]
    assert at.number_input(key="sql_limit").value == 1000
    assert at.number_input(key="sql_timeout").value == 10
    assert at.button(key="sql_run").proto.label == "Run"
    assert not at.dataframe and not downloads(at) and not at.error


def test_an_example_fills_the_editor_and_runs(demo_store, sql_page):
    at = sql_page()
    label = "Items of the latest run with their status"
    at.selectbox(key="sql_example").set_value(label).run()
    assert at.text_area(key="sql_query").value == EXAMPLES[label]
    at.button(key="sql_run").click().run()
    assert not at.exception and not at.error
    shown = at.dataframe[0].value
    expected, truncated = demo_store.query_readonly(EXAMPLES[label], 1000, 10)
    assert not truncated and len(expected) > 0
    assert list(shown.columns) == list(expected.columns)
    assert shown["item_id"].tolist() == expected["item_id"].tolist()
    assert shown["text"].tolist() == expected["text"].tolist()
    assert shown["status"].tolist() == expected["status"].tolist()
    assert shown["idx"].tolist() == expected["idx"].tolist()
    assert at.caption[-1].value == f"{len(expected)} rows, the whole result."


def test_every_example_runs_on_the_page(demo_store, sql_page):
    at = sql_page()
    for label in EXAMPLES:
        at.selectbox(key="sql_example").set_value(label).run()
        at.button(key="sql_run").click().run()
        assert not at.exception and not at.error, (label, [e.value for e in at.error])
        assert len(at.dataframe[0].value.columns) >= 1, label


def test_a_delete_is_refused_and_writes_nothing(demo_store, sql_page):
    before = demo_store.count_items()
    at = run_sql(sql_page(), "DELETE FROM items")
    assert not at.exception
    assert "not allowed" in at.error[0].value
    assert not at.dataframe and not downloads(at)
    assert demo_store.count_items() == before
    # The app keeps running: the next query works.
    at = run_sql(at, "SELECT count(*) AS n FROM items")
    assert not at.exception and not at.error
    assert int(at.dataframe[0].value["n"][0]) == before


@pytest.mark.parametrize("sql", ["SELECT * FROM read_csv('/etc/passwd')",
                                 "SELECT * FROM read_text('/etc/passwd')",
                                 "ATTACH '/tmp/other.duckdb'",
                                 "COPY items TO '/tmp/items.csv'"])
def test_file_access_is_refused(demo_store, sql_page, sql):
    at = run_sql(sql_page(), sql)
    assert not at.exception
    assert at.error
    assert "root:" not in at.error[0].value
    assert not at.dataframe and not downloads(at)


def test_a_failing_query_shows_its_error_verbatim(demo_store, sql_page):
    at = run_sql(sql_page(), "SELECT * FROM no_such_table")
    assert not at.exception
    assert "no\\_such\\_table" in at.error[0].value  # escaped, so markdown shows it as written


def test_a_slow_query_is_stopped_at_the_time_limit(demo_store, sql_page):
    at = sql_page()
    at.number_input(key="sql_timeout").set_value(1)
    at = run_sql(at, SLOW_QUERY)
    assert not at.exception
    assert "longer than 1 s" in at.error[0].value


def test_the_row_limit_cuts_the_result(demo_store, sql_page):
    n = demo_store.count_items()
    at = run_sql(sql_page(), "SELECT item_id, text FROM items", limit=7)
    assert not at.exception and not at.error
    assert len(at.dataframe[0].value) == 7
    assert "cut at the row limit of 7" in at.caption[-1].value
    at = run_sql(at, "SELECT item_id, text FROM items", limit=n)
    assert len(at.dataframe[0].value) == n
    assert at.caption[-1].value == f"{n} rows, the whole result."


def test_the_download_is_offered_after_a_run_and_survives_reruns(demo_store, sql_page):
    at = sql_page()
    assert not downloads(at)
    at.button(key="sql_run").click().run()
    assert not at.exception and not at.error
    assert [b.proto.label for b in downloads(at)] == ["Download CSV"]
    rows = len(at.dataframe[0].value)
    at.number_input(key="sql_timeout").set_value(20).run()  # any other interaction reruns the page
    assert [b.proto.label for b in downloads(at)] == ["Download CSV"]
    assert len(at.dataframe[0].value) == rows


def test_results_with_repeated_names_and_huge_numbers_are_shown(demo_store, sql_page):
    at = run_sql(sql_page(), "SELECT i.*, r.*, hash(i.text) AS h, (1::HUGEINT << 100) AS big "
                             "FROM items i JOIN runs r USING (run_id)", limit=5)
    assert not at.exception and not at.error, [e.value for e in at.error]
    shown = at.dataframe[0].value
    assert len(shown) == 5
    assert {"tokens_in", "tokens_in_2", "h"} <= set(shown.columns)


def test_on_an_empty_database_the_examples_run_and_return_no_rows(store, sql_page):
    at = sql_page()
    at.button(key="sql_run").click().run()
    assert not at.exception and not at.error
    assert len(at.dataframe[0].value) == 0
    assert at.caption[-1].value == "0 rows, the whole result."


def test_the_time_limit_is_capped_by_its_setting(demo_store, sql_page, monkeypatch):
    assert sql_page().number_input(key="sql_timeout").proto.max == 60  # SYNTH_SQL_MAX_SECONDS's default
    monkeypatch.setenv("SYNTH_SQL_MAX_SECONDS", "5")
    at = sql_page()
    timeout = at.number_input(key="sql_timeout")
    assert (timeout.proto.max, timeout.value) == (5, 5)  # the default 10 s does not fit under 5 s
    assert "At most 5 s (SYNTH_SQL_MAX_SECONDS)" in timeout.help


def test_a_query_over_the_memory_limit_shows_what_to_do(demo_store, sql_page, monkeypatch):
    monkeypatch.setenv("SYNTH_SQL_MEMORY_LIMIT", "64MB")
    at = run_sql(sql_page(), "SELECT len(list(x)) AS n FROM range(20000000) t(x)")
    assert not at.exception and not at.dataframe
    assert "needs more memory than the SQL console allows (64MB" in at.error[0].value
    assert "SYNTH\\_SQL\\_MEMORY\\_LIMIT" in at.error[0].value  # escaped for markdown, shown as written
