"""Every setting in one place: a default, a help string, and the environment variable that
overrides it. Values are read from the environment each time, so a test or a CLI flag that sets
the variable takes effect at once.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from synth.kernel.errors import SynthError

PROJECT_DIR = Path(__file__).resolve().parents[2]
DATA_DIR = PROJECT_DIR / "data"

# Pinned defaults, named so tests and docs can refer to them.
DEFAULT_SEED = 0
DEFAULT_LOCAL_MODEL = "local/smollm2-135m"
DEFAULT_EMBED_MODEL = "all-MiniLM-L6-v2"
DEFAULT_NEAR_DUP_THRESHOLD = 0.9
DEFAULT_TEMPERATURE = 0.8
DEFAULT_MAX_TOKENS = 256  # the embedded model finishes 80 % of default-prompt reviews (90 % at 400, 15 % at 64)
DEFAULT_CONCURRENCY = 4  # model calls in flight at once (generation, judging)
DEFAULT_COMPARE_N = 8  # items per version when an A/B comparison has to run a version
DEFAULT_MAX_ITEM_CHARS = 100_000  # one item's text; a grammar's largest expansion too


def _to_bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting("db_path", "SYNTH_DB", str(DATA_DIR / "synth.duckdb"),
                "DuckDB database file that holds runs, items, embeddings and metrics."),
        Setting("demo_file", "SYNTH_DEMO_FILE", str(DATA_DIR / "demo.jsonl"),
                "JSONL demo dataset loaded into an empty database on first start."),
        Setting("load_demo", "SYNTH_LOAD_DEMO", True,
                "Load the demo dataset into an empty database when the app starts.", _to_bool),
        Setting("default_model", "SYNTH_DEFAULT_MODEL", DEFAULT_LOCAL_MODEL,
                "litellm model name used when none is given."),
        Setting("embed_model", "SYNTH_EMBED_MODEL", DEFAULT_EMBED_MODEL,
                "sentence-transformers model used for embeddings (a registry name or a local path)."),
        Setting("near_dup_threshold", "SYNTH_NEAR_DUP_THRESHOLD", DEFAULT_NEAR_DUP_THRESHOLD,
                "Cosine similarity above which two items count as near-duplicates.", float),
        Setting("seed", "SYNTH_SEED", DEFAULT_SEED, "Seed for sampling and layouts.", int),
        Setting("umap_n_neighbors", "SYNTH_UMAP_N_NEIGHBORS", 15, "UMAP n_neighbors.", int),
        Setting("umap_min_dist", "SYNTH_UMAP_MIN_DIST", 0.1, "UMAP min_dist.", float),
        Setting("cluster_method", "SYNTH_CLUSTER_METHOD", "kmeans",
                "How the dataset is clustered for cluster_entropy and the map: kmeans or hdbscan."),
        Setting("cluster_k", "SYNTH_CLUSTER_K", 0, "k-means clusters; 0 chooses k from the data: the largest jump in Ward's merge cost on a seeded "
                "2,000-item sample, 2 to 40, or sqrt(n/2) when no jump stands out.", int),
        Setting("coverage_k", "SYNTH_COVERAGE_K", 5,
                "Neighbours that set each reference item's neighbourhood radius in coverage metrics.", int),
        Setting("local_n_ctx", "SYNTH_LOCAL_N_CTX", 2048, "Context length of the embedded model.", int),
        # -- speed of the loop: owned by the local-model and embedding work (issue 13) --
        Setting("local_threads", "SYNTH_LOCAL_THREADS", 1,
                "CPU threads per llama.cpp context of the embedded model. Above 1 a context's threads wait "
                "on one another at every step: keep contexts x threads at most the number of cores.", int),
        Setting("local_contexts", "SYNTH_LOCAL_CONTEXTS", 3,
                "llama.cpp contexts of the embedded model: calls run on that many at once (each holds "
                "its own KV cache and buffers, about 70 MB at the default context length). One-thread "
                "contexts never wait on each other: 3 on 2 cores measured as fast as 2 or faster, and "
                "a 3-item Preview writes all three at once.", int),
        Setting("embed_threads", "SYNTH_EMBED_THREADS", 2,
                "CPU threads for embedding (torch or ONNX Runtime); 0 lets the library choose. ONNX Runtime with "
                "2 measured 1.9x one thread on 2 idle cores and as fast as one beside a busy process.", int),
        Setting("embed_backend", "SYNTH_EMBED_BACKEND", "sentence-transformers",
                "How texts are embedded: sentence-transformers (the reference) or onnx (ONNX Runtime on a "
                "file exported once from the same weights into .embed-cache beside the database; the same "
                "vectors, without importing torch; its speed-up was not steady on a shared 2-core machine).", str),
        # -- end of speed settings --
        Setting("request_timeout", "SYNTH_REQUEST_TIMEOUT", 120.0,
                "Seconds to wait for one hosted-model response.", float),
        Setting("max_retries", "SYNTH_MAX_RETRIES", 4,
                "Retries of a call after a 429, a 5xx, a timeout or a dropped connection.", int),
        Setting("backoff_base", "SYNTH_BACKOFF_BASE", 0.5,
                "Seconds before the first retry; doubled for each further one (Retry-After wins).", float),
        Setting("backoff_max", "SYNTH_BACKOFF_MAX", 30.0, "Longest wait between two retries, in seconds.", float),
        Setting("secrets_file", "SYNTH_SECRETS_FILE", "",
                "Extra secrets.toml to read API keys from (besides .streamlit/secrets.toml)."),
        Setting("max_item_chars", "SYNTH_MAX_ITEM_CHARS", DEFAULT_MAX_ITEM_CHARS,
                "Longest text, in characters, an item may have (generated, expanded from a grammar or "
                "imported); longer ones are refused with a message.", int),
        Setting("import_notice_rows", "SYNTH_IMPORT_NOTICE_ROWS", 10_000,
                "Rows in an imported file past which the import says how large it is and how long "
                "embedding it will take.", int),
        Setting("import_notice_mb", "SYNTH_IMPORT_NOTICE_MB", 20.0,
                "File size, in MB, past which an import says how large the file is.", float),
        Setting("sql_memory_limit", "SYNTH_SQL_MEMORY_LIMIT", "512MB",
                "Memory a SQL console query may use (DuckDB memory_limit, e.g. 512MB or 2GB)."),
        Setting("sql_threads", "SYNTH_SQL_THREADS", 1, "CPU threads a SQL console query may use.", int),
        Setting("app_blas_threads", "SYNTH_APP_BLAS_THREADS", 1,
                "BLAS threads for numpy in the app (0: the library's own choice, one per core). The app "
                "shares the cores with the browser drawing its map: on a busy machine a 2-thread BLAS "
                "call stalls (a 290-item PCA took 0.4 s in the app against 15 ms alone, and a fresh start "
                "drew its first map 0.4 s later). The CLI keeps the library's choice.", int),
        Setting("sql_max_seconds", "SYNTH_SQL_MAX_SECONDS", 60.0,
                "Longest time limit a SQL console query may be given, in seconds.", float),
        Setting("debug", "SYNTH_DEBUG", False,
                "Show the full traceback when a command fails with an unexpected error (a bug).", _to_bool),
        Setting("compare_min_items", "SYNTH_COMPARE_MIN_ITEMS", 20,
                "Items a run needs before its size-dependent metrics are compared with another's; "
                "smaller runs are labelled 'too small to compare'.", int),
        Setting("map_view_points", "SYNTH_MAP_VIEW_POINTS", 5_000,
                "Past this many points the Explore map is drawn by a component that updates its plot in "
                "place when a filter changes (a plotly chart is made anew each time); 0 draws every map "
                "with it.", int),
        Setting("headline_sample", "SYNTH_HEADLINE_SAMPLE", 10_000,
                "Past this many items, the map's headline figures (before and after the filters alike) "
                "are measured on a seeded random sample of this many, and say so.", int),
    ]
}


def get(name: str) -> Any:
    """Return the current value of setting ``name`` (environment first, then the default)."""
    setting = SETTINGS[name]
    raw = os.environ.get(setting.env)
    if raw is None or raw == "":
        return setting.default
    try:
        return setting.parse(raw)
    except ValueError:
        raise SynthError(
            f"{setting.env}={raw!r} is not valid: {setting.help} Unset it or give a valid value."
        ) from None


def secrets_files() -> list[Path]:
    """Streamlit-style secrets files, in the order they are read (later ones win)."""
    files = [Path.home() / ".streamlit" / "secrets.toml", Path.cwd() / ".streamlit" / "secrets.toml",
             PROJECT_DIR / ".streamlit" / "secrets.toml"]
    extra = get("secrets_file")
    if extra:
        files.append(Path(extra))
    seen: list[Path] = []
    for f in files:
        if f not in seen:
            seen.append(f)
    return seen


def read_secret(name: str) -> str | None:
    """An API key from the environment, else from a Streamlit secrets.toml.

    Read without importing streamlit, so the CLI sees the same keys as the app.
    """
    value = os.environ.get(name)
    if value:
        return value
    found = None
    for path in secrets_files():
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, OSError) as exc:
            raise SynthError(f"Cannot read secrets file {path}: {exc}. Fix or remove it.") from None
        if isinstance(data.get(name), str) and data[name]:
            found = data[name]
    return found
