"""SQL console: read-only queries over the database, with example queries and a CSV download."""

from __future__ import annotations

import streamlit as st

from pages.data import get_store
from pages.shell import require_app
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.text import literal_markdown
from synth.outputs.sqlconsole import (
    DEFAULT_TIMEOUT_S,
    EXAMPLES,
    displayable,
    result_caption,
    to_csv,
)

require_app()

READ_ONLY_NOTE = ("Read-only: only SELECT, WITH, DESCRIBE, SHOW, EXPLAIN and SUMMARIZE run; "
                  "file-reading functions, ATTACH, COPY, INSTALL and LOAD are refused. The database "
                  "is opened read-only with external access off. The tables are described in the "
                  "README's schema section.")


def use_example() -> None:
    st.session_state["sql_query"] = EXAMPLES[st.session_state["sql_example"]]


st.title("SQL console")
st.caption(READ_ONLY_NOTE)
store = get_store()
example = st.selectbox("Example query", list(EXAMPLES), key="sql_example", on_change=use_example)
st.session_state.setdefault("sql_query", EXAMPLES[example])
sql = st.text_area("SQL", key="sql_query", height=220)
limit_column, timeout_column = st.columns(2)
limit = limit_column.number_input("Row limit", min_value=1, max_value=100_000, value=1000, key="sql_limit")
longest = max(1, int(settings.get("sql_max_seconds")))  # whole seconds, as the widget counts them
timeout = timeout_column.number_input("Time limit (seconds)", min_value=1, max_value=longest,
                                      value=min(int(DEFAULT_TIMEOUT_S), longest), key="sql_timeout",
                                      help=f"At most {longest} s (SYNTH_SQL_MAX_SECONDS).")

if st.button("Run", type="primary", key="sql_run"):
    try:
        frame, truncated = store.query_readonly(sql, int(limit), float(timeout))
    except SynthError as exc:
        st.session_state.pop("sql_result", None)
        st.error(literal_markdown(str(exc), keep_breaks=True))
    else:
        st.session_state["sql_result"] = {
            "table": displayable(frame), "csv": to_csv(frame),
            "caption": result_caption(len(frame), truncated, int(limit))}

result = st.session_state.get("sql_result")
if result:
    st.dataframe(result["table"], hide_index=True, width="stretch")
    st.caption(result["caption"])
    st.download_button("Download CSV", result["csv"], file_name="query.csv", mime="text/csv",
                       key="sql_download", on_click="ignore")
