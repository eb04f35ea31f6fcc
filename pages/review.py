"""Review: people accept, reject, tag or edit items, one at a time or many at once, and an LLM
judge scores them against a rubric."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.data import get_store
from pages.shell import require_app
from pages.widgets import call_ui, error_text, job_ui, stop_on_error
from synth.generate.judge import Rubric
from synth.kernel import settings
from synth.kernel.text import format_number, literal_markdown
from synth.workflows import jobs, review

require_app()

# Keys that drive the review card ("C" and "R" are Streamlit's own; they fire unless a text box has the focus).
SHORTCUTS = {"previous": "P", "accept": "A", "reject": "X", "next": "N"}
TABLE_ROW_PX = 110  # taller than one line, so Streamlit wraps the text (about five lines a row)


def run_ui(runs: pd.DataFrame) -> str:
    labels = dict(zip(runs["run_id"], runs["name"]))
    return st.selectbox("Run", list(labels)[::-1], format_func=labels.get, key="review_run")


def statuses_ui() -> list[str]:
    return st.multiselect("Show statuses", review.STATUSES, default=list(review.STATUSES),
                          key="review_statuses", placeholder="Choose one or more statuses")


def notify(kind: str, message: str) -> None:
    """Keep a message (markdown) for the next run: callbacks run before the page is drawn."""
    st.session_state["review_notice"] = (kind, message)


def act(what: str, fn, *args):
    """``fn(*args)`` from a callback, or None after keeping its error for the page to show."""
    try:
        return fn(*args)
    except Exception as exc:
        notify("error", error_text(exc, what))
        return None


def on_decide(item_ids: list[str], current: str, status: str, number: int) -> None:
    try:
        following = review.decide(get_store(), item_ids, current, status)
    except Exception as exc:
        notify("error", error_text(exc, f"marking item {number} {status}"))
        return
    st.session_state["review_current"] = following or current
    notify("success", f"Item {number} {status}." + ("" if following else " It was the last one shown."))


def on_step(item_ids: list[str], current: str, step: int) -> None:
    st.session_state["review_current"] = review.step_item(item_ids, current, step)


def on_save_edit(current: str, old_text: str, number: int) -> None:
    new_text = st.session_state.get(f"review_edit_{current}", old_text)
    version = act(f"saving the edit of item {number}", review.revise, get_store(), current, old_text, new_text)
    if version is not None:
        notify("success", f"Item {number} saved as version {version}; the earlier text is kept in its history.")
    elif not st.session_state.get("review_notice"):
        notify("info", "The text is unchanged: nothing to save.")


def on_bulk(item_ids: list[str], rows: list[int], action: str) -> None:
    store = get_store()
    targets = act("choosing the rows", review.target_items, item_ids, rows)
    if targets is None:
        return
    if action == "tag":
        n = act("tagging items", review.tag_items, store, targets, st.session_state.get("review_tag_text", ""))
        done = f"Tagged {n} item{'s' if n != 1 else ''}." if n is not None else None
    else:
        n = act(f"marking items {action}", review.bulk_set_status, store, targets, action)
        done = f"Marked {n} item{'s' if n != 1 else ''} {action}." if n is not None else None
    if done:
        notify("success", done)
        # a new table key clears the selection: its row positions would point at other rows now
        st.session_state["review_table_round"] = st.session_state.get("review_table_round", 0) + 1


def notice_ui() -> None:
    notice = st.session_state.pop("review_notice", None)
    if notice:
        {"error": st.error, "success": st.success, "info": st.info}[notice[0]](notice[1])


def card_ui(view: pd.DataFrame) -> None:
    """One item at a time: its full text, variables, source and verdict, with keyboard-driven buttons."""
    ids = view["item_id"].tolist()
    current = review.current_item(ids, st.session_state.get("review_current"))
    row = view.set_index("item_id").loc[current]
    number = int(row["#"])
    with st.container(border=True):
        st.markdown(f"**Item {ids.index(current) + 1} of {len(ids)} shown** · number {number} in the run · "
                    f"status **{literal_markdown(row['status'])}** · version {row['version']}")
        buttons = st.columns(4)
        buttons[0].button("Previous", key="review_previous", shortcut=SHORTCUTS["previous"], width="stretch",
                          on_click=on_step, args=(ids, current, -1), disabled=len(ids) < 2)
        buttons[1].button("Accept", key="review_accept", type="primary", shortcut=SHORTCUTS["accept"],
                          width="stretch", on_click=on_decide, args=(ids, current, "accepted", number))
        buttons[2].button("Reject", key="review_reject", shortcut=SHORTCUTS["reject"], width="stretch",
                          on_click=on_decide, args=(ids, current, "rejected", number))
        buttons[3].button("Next", key="review_next", shortcut=SHORTCUTS["next"], width="stretch",
                          on_click=on_step, args=(ids, current, 1), disabled=len(ids) < 2)
        st.caption("Keys: **A** accept, **X** reject, **N** next, **P** previous (while no text box has the "
                   "focus). Accepting or rejecting moves on to the next item.")
        text_col, facts_col = st.columns([3, 2])
        with text_col:
            st.text(row["text"])
            with st.expander("Edit the text"):
                st.text_area("Text", row["text"], key=f"review_edit_{current}", height=160)
                st.button("Save edit", key="review_save_edit", on_click=on_save_edit,
                          args=(current, row["text"], number))
                st.caption("An edit is saved as a new version and marks the item edited (an approval); "
                           "the original stays in the version history.")
        with facts_col:
            variables = row["variables"].replace(" · ", "\n") if row["variables"] != review.MISSING \
                else "— (made without variables)"
            for label, value in [("Variables", variables), ("Source", row["source"]),
                                 (f"Judge score {row['judge score']}", row["judge reasons"]), ("Tags", row["tags"])]:
                st.markdown(f"**{literal_markdown(label)}**  \n{literal_markdown(value, keep_breaks=True)}")
            st.caption(literal_markdown(row["output check"]))
        if row["source text"] != review.MISSING:
            with st.expander("The source text it was made from"):
                st.text(row["source text"])
        with st.expander("Version history"):
            versions = review.history_view(get_store(), current)
            if versions.empty:
                st.caption("Never edited: this is the text as it was made.")
            else:
                st.dataframe(versions, hide_index=True, width="stretch", placeholder=review.MISSING)


def table_ui(view: pd.DataFrame, run_id: str) -> None:
    """Every shown item with wrapping text; bulk accept, reject and tag of the selected rows (or all)."""
    st.subheader("All shown items")
    ids = view["item_id"].tolist()
    # Narrow widths that every column grows from: the table fits a 1024 px screen beside the sidebar.
    event = st.dataframe(
        review.table_view(view), key=f"review_table_{run_id}_{st.session_state.get('review_table_round', 0)}",
        hide_index=True, width="stretch", column_order=review.TABLE_COLUMNS[1:], on_select="rerun",
        selection_mode="multi-row", row_height=TABLE_ROW_PX, placeholder=review.MISSING,
        column_config={"#": st.column_config.NumberColumn("#", width=36, pinned=True),
                       "text": st.column_config.TextColumn("text", width=165),
                       "status": st.column_config.TextColumn("status", width=78),
                       "judge": st.column_config.TextColumn("judge", width=105, help="Score and reasons"),
                       "made with": st.column_config.TextColumn(
                           "made with", width=105, help="Variable values, model, technique and prompt version"),
                       "tags": st.column_config.TextColumn("tags", width=56)})
    rows = list(event.selection.rows)
    st.caption("Long texts are cut to five lines here; the card above shows an item's whole text.")
    st.markdown(f"Apply to {review.describe_target(len(rows), len(ids))}:")
    accept, reject, tag_text, tag = st.columns([1, 1, 2, 1], vertical_alignment="bottom")
    accept.button("Accept", key="review_bulk_accept", width="stretch", on_click=on_bulk,
                  args=(ids, rows, "accepted"))
    reject.button("Reject", key="review_bulk_reject", width="stretch", on_click=on_bulk,
                  args=(ids, rows, "rejected"))
    tag_text.text_input("Tags (comma-separated)", key="review_tag_text", placeholder="e.g. too short, off topic")
    tag.button("Add tags", key="review_bulk_tag", width="stretch", on_click=on_bulk, args=(ids, rows, "tag"))


st.title("Review")
st.caption("Accept, reject or edit items one at a time, or many at once in the table. An edit keeps "
           "the original as version 1. Status is a column like any other: filter and export by it.")
store = get_store()
runs = store.runs()
if runs.empty:
    st.info("No runs yet. Generate a batch on the Generate page first.")
    st.stop()
run_id = run_ui(runs)
statuses = statuses_ui()
notice_ui()
with stop_on_error("reading this run's items"):
    view = review.review_items(store, run_id, statuses)
n_run = int(runs.set_index("run_id").loc[run_id, "n_items"])
if not statuses:
    st.info("Choose at least one status above to see this run's items.")
elif view.empty:
    st.info(f"None of this run's {n_run} items has the statuses chosen. Choose more statuses above.")
else:
    st.caption(f"{len(view)} of the run's {n_run} items have the statuses chosen.")
    card_ui(view)
    table_ui(view, run_id)

st.subheader("LLM judge")
judge_model = st.text_input("Judge model", settings.get("default_model"), key="review_judge_model")
rubric_text = st.text_area("Checklist (one 'name: description' per line) or a YAML rubric",
                           "on_task: does what its prompt asked\nfluent: reads naturally\n"
                           "self_contained: makes sense on its own", key="review_rubric", height=100)
if st.button("Judge this run", key="review_judge"):
    rubric = call_ui(Rubric.from_text, rubric_text)
    control = None if rubric is None else call_ui(jobs.start_judge, store.path,
                                                  store.items([run_id])["item_id"].tolist(), judge_model, rubric)
    if control is not None:
        st.session_state["review_judge_job"] = control.job_id


def judged_ui(result) -> None:
    st.success(f"Judged {result.n_items} items: {result.n_valid} valid verdicts, mean score "
               f"{format_number(result.score_mean, 3, missing=review.MISSING)}.")
    st.dataframe(review.pass_rate_table(result.pass_rates), hide_index=True)
    if st.button("Show the new scores above", key="review_judge_refresh"):
        st.rerun()  # the judge ran in a fragment: the card and the table are drawn by the whole page


job_ui("review_judge_job", judged_ui)
