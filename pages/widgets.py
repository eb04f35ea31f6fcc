"""Widgets shared by the pages: errors and progress, the filter panel, licence and evaluation notes."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable

import pandas as pd
import streamlit as st

from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.text import literal_markdown

if TYPE_CHECKING:
    from synth.analysis.filters import FilterSpec

INTRINSIC_NOTE = ("**Intrinsic evaluation.** Synth Studio looks at the data itself (diversity, "
                  "near-duplicates, length, cost). It does not train a model on the data, so it "
                  "cannot tell how much a model would gain from it.")
BUG_DETAIL_CHARS = 200
BUG_NOTE = "This is a bug in Synth Studio, not something you did; the details are in the server log."
logger = logging.getLogger(__name__)


def error_text(exc: Exception, what: str) -> str:
    """What a page shows for ``exc`` (as markdown): a ``SynthError``'s message, literally; for any
    other exception (a bug) one line saying what failed, its traceback going to the server log and
    never to the page."""
    if isinstance(exc, SynthError):
        return literal_markdown(str(exc), keep_breaks=True)
    logger.error("Unexpected error while %s", what, exc_info=exc)
    detail = (str(exc).strip().splitlines() or [""])[0][:BUG_DETAIL_CHARS]
    return (f"Something went wrong while {literal_markdown(what)} ({type(exc).__name__}"
            f"{': ' + literal_markdown(detail) if detail else ''}). {BUG_NOTE}")


@contextmanager
def stop_on_error(what: str = "preparing this page"):
    """Show an exception raised inside the block as ``st.error`` (see ``error_text``) and stop the
    script run: for a step the rest of the page cannot do without."""
    try:
        yield
    except Exception as exc:  # st.stop and st.rerun are not Exceptions: they pass
        st.error(error_text(exc, what))
        st.stop()


def call_ui(fn: Callable, *args, **kwargs) -> Any:
    """``fn(*args, **kwargs)``, or None after showing its exception as ``st.error`` (see
    ``error_text``; the page goes on)."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        st.error(error_text(exc, f"running {getattr(fn, '__name__', 'a step')}"))
        return None


def run_with_progress_ui(label: str, fn: Callable, *args, row: Callable[[Any], dict] | None = None,
                         unit: str = "items", done: str | None = None, clear: bool = False,
                         writing: Callable[[int, str], dict] | None = None,
                         render: Callable[[list[dict]], None] | None = None, **kwargs) -> Any:
    """``fn(*args, on_item=..., **kwargs)`` under a progress bar, or None after showing its
    exception as ``st.error`` (see ``error_text``). ``label`` and ``done`` are markdown.

    ``fn`` calls ``on_item(item, i, n)`` as item ``i`` of ``n`` arrives; with ``row``, each item
    also adds ``row(item)`` to a live table under the bar. With ``writing``, ``fn`` also gets
    ``on_partial({position: text so far})`` and the items still being written are in the table too,
    as ``writing(position, text)``. ``render(rows)`` draws the rows instead of the table. When ``fn``
    succeeds, the bar shows ``done`` if given, is removed if ``clear``, and else stays as the last
    item left it.
    """
    progress = st.progress(0.0, text=label)
    live = st.empty() if row else None
    arrived: list[dict] = []
    being_written: dict[int, str] = {}

    def show() -> None:
        rows = arrived + [writing(i, text) for i, text in sorted(being_written.items())]
        if render is None:
            live.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        else:
            with live.container():
                render(rows)

    def on_item(item, i: int, n: int) -> None:
        progress.progress(min(1.0, (i + 1) / max(n, 1)), text=f"{i + 1} of {n} {unit}")
        if live is not None:
            arrived.append(row(item))
            being_written.pop(getattr(item, "idx", None), None)
            show()

    def on_partial(texts: dict[int, str]) -> None:
        being_written.clear()
        being_written.update(texts)
        show()

    if writing is not None and live is not None:
        kwargs["on_partial"] = on_partial
    try:
        result = fn(*args, on_item=on_item, **kwargs)
    except Exception as exc:
        progress.empty()
        st.error(error_text(exc, f"running {getattr(fn, '__name__', 'a step')}"))
        return None
    if done is not None:
        progress.progress(1.0, text=done)
    elif clear:
        progress.empty()
    return result


def licence_ui(model: str | None, api_base: str | None = None, container=None) -> None:
    """The chosen model's licence note: what its terms say about training on its outputs."""
    from synth.llm.licences import FORBIDDEN, UNKNOWN, note_for

    note = note_for(model, api_base)
    target = container or st
    # the summary may quote the model's name as typed (its provider prefix)
    text = (f"**Output licence: {note.training_use}.** {literal_markdown(note.licence)}: "
            f"{literal_markdown(note.summary)}")
    text += f" [Source]({note.source})" if note.source else ""
    if note.training_use == FORBIDDEN:
        target.warning(text, icon=":material/gavel:")
    elif note.training_use == UNKNOWN:
        target.info(text, icon=":material/help:")
    else:
        target.caption(text)


def intrinsic_note() -> None:
    st.caption(INTRINSIC_NOTE)


def current_filters() -> "FilterSpec":
    """The filters in force (from this session, else from the URL), without drawing the panel."""
    from synth.analysis.filters import FilterSpec

    if "filters_spec" not in st.session_state:
        # from_query reads only the filters' own keys (not ?present=1, say)
        st.session_state["filters_spec"] = FilterSpec.from_query(st.query_params.to_dict())
    return st.session_state["filters_spec"]


THRESHOLD_KEY = "filters_threshold"  # in the session, not a widget's key: it outlives the panel
THRESHOLD_QUERY = "near"  # in the URL when it differs from the setting and the filter is off
THRESHOLD_MIN = 0.50
THRESHOLD_HELP = ("Two items whose embeddings have at least this cosine similarity are near-duplicates. "
                  "One threshold for the whole app: the near-duplicate rate on every page counts at it, and "
                  "\"Drop near-duplicates\" drops at it. It starts at the near_dup_threshold setting "
                  "(SYNTH_NEAR_DUP_THRESHOLD).")


def _threshold_or_none(raw: Any) -> float | None:
    """A threshold from a link or a filter, or None when it is not one the panel can show."""
    try:
        value = float(raw[-1] if isinstance(raw, list) else raw)
    except (TypeError, ValueError):
        return None
    return round(value, 2) if THRESHOLD_MIN <= value <= 1.0 else None


def _setting_threshold() -> float:
    """The ``near_dup_threshold`` setting, brought into the panel's range."""
    return round(min(1.0, max(THRESHOLD_MIN, float(settings.get("near_dup_threshold")))), 2)


def near_dup_threshold() -> float:
    """The app's one near-duplicate threshold: the filter panel's, as the user left it in this
    session, else the link's (``?dedup=`` or ``?near=``), else the ``near_dup_threshold`` setting.
    Every page that counts or drops near-duplicates reads it here, without drawing the panel."""
    state = st.session_state
    if THRESHOLD_KEY not in state:
        spec = current_filters()
        state[THRESHOLD_KEY] = (_threshold_or_none(spec.dedup_threshold)
                                or _threshold_or_none(st.query_params.get(THRESHOLD_QUERY))
                                or _setting_threshold())
    return float(state[THRESHOLD_KEY])


def threshold_note(threshold: float) -> str:
    """Where the near-duplicate threshold comes from, for the pages that count at it."""
    return (f"Near-duplicates are counted at cosine similarity {threshold:.2f} or more: the near-duplicate "
            "threshold in the sidebar's filter panel, the one threshold of the whole app.")


def filters_ui(dataset) -> "FilterSpec":
    """The filter panel shared by Explore, Metrics and Export, with the app's one near-duplicate
    threshold (see ``near_dup_threshold``).

    Its state lives in the URL (st.query_params), so a filtered view can be shared as a link,
    and in the session, so it follows the user from page to page."""
    from synth.analysis.filters import FilterSpec, word_counts

    spec: FilterSpec = current_filters()
    items = dataset.items
    side = st.sidebar
    side.subheader("Filters")
    threshold = side.slider("Near-duplicate threshold (cosine similarity)", THRESHOLD_MIN, 1.00,
                            near_dup_threshold(), 0.01, key="filters_dedup", help=THRESHOLD_HELP)
    st.session_state[THRESHOLD_KEY] = float(threshold)
    dedup_on = side.checkbox("Drop near-duplicates", value=spec.dedup_threshold is not None,
                             key="filters_dedup_on", help="Diversity first: keep one item per group "
                             "of near-duplicates at the threshold above (the reviewed, best judged, "
                             "oldest one).")
    longest = int(word_counts(items).max()) if len(items) else 1
    low, high = side.slider("Length (words)", 0, max(longest, 1),
                            (spec.min_words or 0, min(spec.max_words or longest, max(longest, 1))),
                            key="filters_length")
    include = side.text_input("Keep only texts matching (regex)", spec.include, key="filters_include")
    exclude = side.text_input("Drop texts matching (regex)", spec.exclude, key="filters_exclude")
    judge = side.slider("Minimum judge score (0: off)", 0.0, 5.0, spec.min_judge_score or 0.0, 0.5,
                        key="filters_judge")
    statuses = side.multiselect("Status", sorted(items["status"].unique()) if len(items) else [],
                                [s for s in spec.statuses if s in set(items["status"])], key="filters_status")
    names = dict(zip(dataset.clustering.names.keys(), dataset.clustering.names.values()))
    clusters = side.multiselect("Clusters", sorted(names), [c for c in spec.clusters if c in names],
                                format_func=lambda c: names.get(c, str(c)), key="filters_clusters")
    runs = dict(zip(items["run_id"], items["run_name"]))
    chosen_runs = side.multiselect("Runs", list(runs), [r for r in spec.runs if r in runs],
                                   format_func=runs.get, key="filters_runs")
    versions = sorted(items["prompt_label"].unique()) if len(items) else []
    chosen_versions = side.multiselect("Prompt versions", versions,
                                       [v for v in spec.prompt_versions if v in versions], key="filters_versions")
    new = FilterSpec(dedup_threshold=float(threshold) if dedup_on else None,
                     min_words=low or None, max_words=high if high < longest else None,
                     include=include.strip(), exclude=exclude.strip(), min_judge_score=judge or None,
                     statuses=statuses, clusters=[int(c) for c in clusters], runs=chosen_runs,
                     prompt_versions=chosen_versions)
    st.session_state["filters_spec"] = new
    query = new.to_query()
    if not dedup_on and round(float(threshold), 2) != _setting_threshold():
        query[THRESHOLD_QUERY] = f"{float(threshold):.2f}"  # a shared link measures at the same threshold
    if query != {k: v for k, v in st.query_params.to_dict().items()}:
        st.query_params.from_dict(query)
    if side.button("Clear filters", key="filters_clear"):
        st.session_state["filters_spec"] = FilterSpec()
        for key in [k for k in st.session_state if k.startswith("filters_") and k != "filters_spec"]:
            del st.session_state[key]
        st.query_params.clear()
        st.rerun()
    return new


def sampled_notes(params: dict) -> list[str]:
    """One line per metric that was estimated on a sample, saying how (the metric by its label and id)."""
    from synth.analysis.metrics import metric_label

    notes = []
    for name, p in params.items():
        if isinstance(p, dict) and p.get("sampled"):
            how = p.get("how") or (f"{p.get('hypotheses')} of {p.get('population')} items sampled "
                                   f"(seed {p.get('seed')})")
            notes.append(f"{metric_label(name)}: estimated, {how}")
        if isinstance(p, dict) and p.get("candidate_selection") == "tf-idf cosine top-k":
            notes.append(f"{metric_label(name)}: each item compared with its {p.get('candidates')} most similar items "
                         "by TF-IDF")
    return notes


def dropped_ui(result) -> None:
    """What the filters drop (a ``FilterResult``), and why (shown on every page that filters)."""
    dropped = result.dropped
    with st.expander(f"What the filters drop ({len(dropped)} items)"):
        if dropped.empty:
            st.caption("Nothing: no filter is set, or every item passes.")
        else:
            if len(dropped) > DROPPED_SHOWN:  # every row would travel to the browser with its text
                st.caption(f"The first {DROPPED_SHOWN:,} of {len(dropped):,}; export or query the view for the rest.")
            st.dataframe(dropped[["text", "reason", "run_name", "status", "duplicate_of", "item_id"]].head(DROPPED_SHOWN),
                         hide_index=True, width="stretch")


DROPPED_SHOWN = 1000


def form_defaults(form: str, defaults: dict) -> None:
    """Give each of a form's widget keys its starting value: as the user left it on an earlier
    visit to the page (see ``remember_form``), else ``defaults``."""
    kept = st.session_state.get(f"_{form}_kept", {})
    for key, value in {**defaults, **kept}.items():
        st.session_state.setdefault(key, value)


def remember_form(form: str, keys) -> None:
    """Keep a form's values outside its widgets: Streamlit forgets a widget's value when a page
    without it is shown, and the form would come back reset (template, run name, seed). Only keys
    set through ``form_defaults`` (never a button's or an uploader's) may be kept."""
    state = st.session_state
    state[f"_{form}_kept"] = {k: state[k] for k in keys if k in state}


def job_ui(key: str, show_result: Callable[[Any], None], note_phase: bool = False) -> None:
    """The background job a page started (its id in ``st.session_state[key]``): a progress bar
    redrawn every second while it runs (leaving the page does not stop it), then
    ``show_result(result)``, or its error. ``note_phase``: show what the job says it is doing."""
    from synth.workflows import jobs

    def body() -> None:
        job = jobs.get(st.session_state.get(key, ""))
        if job is None:
            return
        if note_phase and job.phase_text:
            st.info(literal_markdown(job.phase_text))
        if job.active:
            st.progress(job.fraction, text=literal_markdown(job.describe()))
        elif job.result is not None:
            show_result(job.result)
        elif job.error:
            st.error(literal_markdown(job.error, keep_breaks=True))

    job = jobs.get(st.session_state.get(key, ""))
    st.fragment(body, run_every=1.0 if job is not None and job.active else None)()

