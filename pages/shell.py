"""The app's shell: its pages and navigation, page set-up, start-up, and presentation mode."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.text import literal_markdown
from synth.kernel.threads import limit_blas_threads

# Light to import (streamlit and the kernel's settings only): app.py imports it before any page,
# and the Explore page draws its first screen before pandas, DuckDB and the rest of synth are
# imported (about 1 s on a cold start, while the browser loads plotly.js). What needs them is
# imported where it is used.

PRESENT_PARAM = "present"
# A file of the app's own: a :material/...: or emoji page icon makes the browser fetch it from
# fonts.gstatic.com or a CDN, and the app makes no request to any host but its own server.
PAGE_ICON = Path(__file__).resolve().parent / "static" / "icon.svg"
PRESENTATION_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], header[data-testid="stHeader"],
[data-testid="stToolbar"] { display: none !important; }
.block-container { padding-top: 1.5rem; max-width: 1500px; }
html, body, [data-testid="stMarkdownContainer"] p, [data-testid="stCaptionContainer"] { font-size: 22px; }
h1 { font-size: 3rem !important; }
[data-testid="stMetricValue"], [data-testid="stMetricValue"] * { font-size: 3rem !important; }
[data-testid="stMetricLabel"] p { font-size: 1.1rem; }
[data-testid="stText"] { font-family: inherit; font-size: 20px; white-space: pre-wrap; }
</style>"""

limit_blas_threads(settings.get("app_blas_threads"))  # the app's process, before numpy is loaded

_RUN = threading.local()
RECENT_JOB_S = 120  # a finished job stays in the sidebar this long


def app_pages() -> list:
    """The app's pages, in menu order; the first is the landing page. Only these are pages: the
    helper modules beside them in pages/ (shell, widgets, data) are never listed."""
    return [
        st.Page("pages/explore.py", title="Explore", icon=":material/scatter_plot:", default=True,
                url_path="explore"),
        st.Page("pages/studio.py", title="Studio", icon=":material/tune:", url_path="studio"),
        st.Page("pages/generate.py", title="Generate", icon=":material/auto_awesome:", url_path="generate"),
        st.Page("pages/review.py", title="Review", icon=":material/rate_review:", url_path="review"),
        st.Page("pages/prompts.py", title="Prompt versions", icon=":material/history:", url_path="prompts"),
        st.Page("pages/compare.py", title="Compare A/B", icon=":material/compare:", url_path="compare"),
        st.Page("pages/metrics.py", title="Metrics", icon=":material/monitoring:", url_path="metrics"),
        st.Page("pages/duplicates.py", title="Near-duplicates", icon=":material/content_copy:",
                url_path="duplicates"),
        st.Page("pages/export.py", title="Export", icon=":material/download:", url_path="export"),
        st.Page("pages/sql.py", title="SQL console", icon=":material/database:", url_path="sql"),
    ]


def configure_page() -> None:
    st.set_page_config(page_title="Synth Studio", page_icon=str(PAGE_ICON), layout="wide")


def presenting() -> bool:
    """Presentation mode (``?present=1``): a clean layout with large type and no settings."""
    return st.query_params.get(PRESENT_PARAM) == "1"


def navigation():
    """The app's navigation; hidden in presentation mode, like every other setting."""
    return st.navigation(app_pages(), position="hidden" if presenting() else "sidebar")


@contextmanager
def app_run(page=None):
    """Marks a script run that went through app.py (its navigation and start-up); when the page is
    drawn, starts the background work held back for it (see ``after_page``). An exception no page
    caught is shown as ``st.error`` (its traceback goes to the server log, never to the page)."""
    _RUN.active, _RUN.started = True, False
    try:
        yield
    except Exception as exc:  # st.stop and st.rerun are not Exceptions: they pass
        from pages.widgets import error_text

        st.error(error_text(exc, "drawing this page"))
    finally:
        _RUN.active = False
        after_page(page)  # also when the page stopped early (st.stop) or failed


def through_app() -> bool:
    """Whether this script run went through app.py (its navigation): see ``require_app``."""
    return getattr(_RUN, "active", False)


def start_up() -> None:
    """``startup_ui``, once per script run."""
    if not getattr(_RUN, "started", False):
        _RUN.started = True
        startup_ui()


def require_app(startup: bool = True) -> None:
    """Start up (``start_up``) a page run through app.py, before the page draws anything: every
    page calls it first. Explore passes ``startup=False`` and starts up after its first screen.

    Runs this page through the app's own navigation when Streamlit ran the file alone.

    Streamlit runs a page file on its own when a fresh server's first URL is that page (a
    bookmark of /generate, say), and on every AppTest switch_page: its pages/-folder heuristic then
    shows a menu of every file in pages/ and skips app.py. Here the app declares its navigation
    (which turns the heuristic off for good), runs the requested page as app.py would, and stops
    the outer run. The page then has the same widget ids as in every later run.
    """
    if through_app():
        if startup:
            start_up()
        return
    configure_page()
    page = navigation()
    with app_run(page):
        page.run()
    st.stop()


def startup_ui() -> None:
    """Open the database, load the demo data into an empty one, and warm UMAP up in the background;
    show the background jobs in the sidebar."""
    from pages.data import prepare_database
    from pages.widgets import stop_on_error

    with stop_on_error("opening the database"):
        prepare_database(settings.get("db_path"))
    if not presenting():
        with st.sidebar:
            jobs_ui()


def jobs_ui() -> None:
    """Every page's sidebar: the jobs this app runs, with their progress and a Cancel button, and
    the runs a stopped process left unfinished, with a Resume button. While a job runs the panel
    redraws every second; when one finishes the whole page runs again, to show what it made."""
    from pages.data import get_store
    from pages.widgets import call_ui
    from synth.workflows import jobs

    running = jobs.active()
    st.fragment(_live_jobs_ui, run_every=1.0 if running else None)()
    for job in running[:5]:
        cancel_ui(job, f"common_cancel_{job.job_id}", named=len(running) > 1)
    try:
        waiting = jobs.resumable_runs(get_store())
    except SynthError:
        return  # the file is busy (another process): shown again on the next page
    busy = {j.run_id for j in running}
    for row in waiting[~waiting["run_id"].isin(busy)].head(3).itertuples():
        st.caption(f"Run **{literal_markdown(row.name)}** was {row.status} at {row.n_items} of "
                   f"{row.n_planned} items.")
        if st.button("Resume", key=f"common_resume_{row.run_id}", icon=":material/play_arrow:",
                     help="Make the items it has not got, into the same run (answers already paid for "
                          "are not asked again)."):
            control = call_ui(jobs.start_resume, get_store().path, row.run_id)
            if control is not None:
                st.rerun()


def cancel_ui(job, key: str, named: bool = False) -> None:
    """A job's Cancel button, drawn by the page's whole run, never inside a polling fragment: a
    click on a fragment's button while the whole page runs is held back and may be lost
    (streamlit/streamlit#10928), and a page that redraws as a batch lands runs whole every few
    seconds (a fresh-clone test took up to 4 minutes and several clicks to cancel). A click here
    interrupts the page's run; the callback cancels before anything else runs."""
    from synth.workflows import jobs

    if job.active and not job.cancel.is_set():
        st.button(f"Cancel {literal_markdown(job.label)}" if named else "Cancel", key=key, icon=":material/stop:",
                  on_click=jobs.cancel, args=(job.job_id,),
                  help="No new call starts; the calls in flight finish and are kept.")


def _live_jobs_ui() -> None:
    from synth.workflows import jobs

    seen = st.session_state.setdefault("common_jobs_seen", set())
    finished_now = False
    for job in jobs.this_process_jobs()[:5]:
        if job.active:
            seen.add(job.job_id)
            st.progress(job.fraction, text=literal_markdown(job.describe()))
        else:
            if job.job_id in seen:
                seen.discard(job.job_id)
                finished_now = True
            if job.finished and time.monotonic() - job.finished < RECENT_JOB_S:
                st.caption(literal_markdown(job.describe()))
    if finished_now:
        st.rerun()  # the whole page: its map and tables now hold what the job made


# The pages whose first click needs the embedder and the embedded model (about 1 GB in memory
# together): they are loaded in the background when one of these is opened, not for every page.
MODEL_PAGES = {"studio", "generate", "review"}


def after_page(page=None) -> None:
    """Background work that must not delay the first screen, started once it is drawn; the models
    too when the page generates or judges (see MODEL_PAGES)."""
    from pages.data import start_deferred_work, start_preload

    start_deferred_work(settings.get("db_path"))
    if page is None or getattr(page, "url_path", "") in MODEL_PAGES:
        start_preload()


def presentation_ui() -> bool:
    """Apply presentation mode's style if it is on, with a way out; else offer a way in."""
    if presenting():
        st.html(PRESENTATION_CSS)
        return True
    if st.sidebar.button("Presentation mode", key="common_present", icon=":material/slideshow:",
                         help="A clean view for stakeholders: the map, the headline metrics and examples "
                              "in large type, with every setting hidden."):
        st.query_params[PRESENT_PARAM] = "1"
        st.rerun()
    return False


def _leave_presentation() -> None:
    st.query_params.pop(PRESENT_PARAM, None)


def leave_presentation_ui() -> None:
    # A callback: it runs before the next run, so leaving is that one run (not the presentation
    # drawn once more, then the page).
    st.button("Leave presentation mode", key="common_unpresent", type="tertiary", on_click=_leave_presentation)
