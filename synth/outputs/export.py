"""Export: items with their provenance to JSONL, CSV or Parquet, or as a Hugging Face dataset folder.

Reads: items, runs and prompts (and, for a dataset folder, the items' embeddings and clusters to
measure them). Writes: one file, or one folder (``data/train.parquet`` and a ``README.md`` dataset
card), atomically: built under a temporary name and renamed into place, so a failed export never
leaves a half-written file or folder. API keys are never stored, so they cannot appear here;
``api_base`` is stored with any user:password part removed.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pandas as pd
import yaml

from synth.kernel.errors import SynthError
from synth.kernel.records import from_json
from synth.kernel.text import format_number, is_missing, literal_markdown
from synth.llm import licences
from synth.outputs.formats import EXPORT_FORMATS, FORMATS, JSON_COLUMNS
from synth.store import DuckStore

if TYPE_CHECKING:
    from synth.analysis.coverage import CoverageSummary


def export_frame(store: DuckStore, run_ids: list[str] | None = None, statuses: list[str] | None = None,
                 min_score: float | None = None, item_ids: list[str] | None = None) -> pd.DataFrame:
    """One row per item with everything needed to know how it was made; optionally only items with
    these review statuses and a latest judge score of at least ``min_score``."""
    frame = store.export_items(run_ids, statuses, min_score, item_ids)
    for column in JSON_COLUMNS:
        frame[column] = frame[column].map(from_json)
    for column in ("created_at", "run_created_at"):
        frame[column] = frame[column].map(lambda v: v.isoformat() if pd.notna(v) else None)
    frame["model_training_use"] = _training_uses(frame)
    return frame


def _training_uses(frame: pd.DataFrame) -> list[str]:
    """Each row's licence note on training with its model's outputs (the run's api_base decides
    whether an ``openai/`` name is OpenAI or a server of your own)."""
    notes: dict[tuple, str] = {}
    uses = []
    for model, run_params in zip(frame["model"], frame["run_params"]):
        key = (model, _api_base(run_params))
        if key not in notes:
            notes[key] = licences.note_for(*key).training_use
        uses.append(notes[key])
    return uses


def _api_base(run_params) -> str | None:
    return run_params.get("api_base") if isinstance(run_params, dict) else None




def store_coverage(store: DuckStore, run_ids: list[str] | None = None, item_ids=None,
                   cluster_method: str | None = None, cluster_k: int | None = None,
                   min_cluster_size: int | None = None) -> CoverageSummary:
    """Coverage of the database's synthetic items (only those of ``run_ids`` and in ``item_ids``
    when given) against every reference item in it, per cluster of the given clustering (default:
    the dataset's current one). What the CLI, the report and the dataset card show."""
    from synth.analysis.coverage import NO_REFERENCE, CoverageSummary, coverage_summary
    from synth.workflows.pipeline import load_dataset

    if not (store.runs()["role"] == "reference").any():
        return CoverageSummary(reason=NO_REFERENCE)  # nothing to load or embed
    dataset = load_dataset(store, cluster_method, cluster_k, min_cluster_size)
    items = dataset.items
    chosen = items["run_role"] != "reference"
    if run_ids is not None:
        chosen &= items["run_id"].isin(set(run_ids))
    if item_ids is not None:
        chosen &= items["item_id"].isin(set(item_ids))
    return coverage_summary(items, dataset.vectors, synthetic_ids=items.loc[chosen, "item_id"])


def _require_parent(out: Path) -> None:
    if not out.parent.exists():
        raise SynthError(f"Folder {out.parent} does not exist. Create it or choose another --out.")


def _frame_to_export(store: DuckStore, run_ids, statuses, min_score, item_ids) -> pd.DataFrame:
    frame = export_frame(store, run_ids, statuses, min_score, item_ids)
    if frame.empty:
        raise SynthError("There are no items to export with these filters. Generate or import some, "
                         "or loosen the filters.")
    return frame


def _umask_mode(mode: int) -> int:
    """``mode`` as the user's umask would make it (mkstemp and mkdtemp make private 0600 / 0700)."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def export_items(store: DuckStore, out: str | Path, run_ids: list[str] | None = None,
                 statuses: list[str] | None = None, min_score: float | None = None,
                 item_ids: list[str] | None = None) -> int:
    """Write items to ``out`` (format from its suffix); return the number of rows written."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise SynthError(f"Cannot export to {out.name}: use a file name ending in "
                         f"{', '.join(EXPORT_FORMATS)}.")
    _require_parent(out)
    frame = _frame_to_export(store, run_ids, statuses, min_score, item_ids)
    write_atomically(out, lambda tmp: FORMATS[suffix].write(frame, tmp))
    return len(frame)


def write_atomically(out: Path, write: Callable[[str], None]) -> None:
    """Have ``write`` fill a temporary file beside ``out``, then rename it into place: a failure
    never leaves a half-written file. The file gets the user's ordinary permissions."""
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}-", suffix=out.suffix, dir=out.parent)
    os.close(fd)
    os.chmod(tmp, _umask_mode(0o666))  # mkstemp makes 0600; an export is an ordinary file to share
    try:
        write(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def export_bytes(store: DuckStore, fmt: str, **filters) -> bytes:
    """The export as bytes in format ``fmt`` (".jsonl", ".csv" or ".parquet"), for a download."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"export{fmt}"
        export_items(store, out, **filters)
        return out.read_bytes()


# ---- Hugging Face dataset folder ---------------------------------------------------------------

DATA_FILE = "data/train.parquet"
CARD_FILE = "README.md"
DEFAULT_TITLE = "Synthetic text dataset (Synth Studio)"
# The Hub's size_categories buckets, smallest first: (upper bound, label).
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                   (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"))
GENERATION_PARAMS = ("temperature", "max_tokens", "top_p", "seed", "n")
COLUMN_HELP = {
    "item_id": "stable id of the item",
    "run_id": "id of the run (one generation batch or import) that made it",
    "run_name": "name of that run",
    "technique": "how the run made items: sampling, back_translation, transform, symbolic or import",
    "idx": "position of the item in its run",
    "text": "the item's text (its latest version, after any review edit)",
    "status": "review status: new, accepted, rejected or edited",
    "version": "text version: 1 as generated, higher after edits",
    "model": "litellm name of the model that wrote it (symbolic: a grammar; empty: imported)",
    "params": "JSON: generation parameters of this call",
    "variables": "JSON: the prompt variables' values for this item",
    "rendered_prompt": "the prompt as sent to the model",
    "fields": "JSON: the parsed structured output, when fields or a schema were declared",
    "valid": "whether the structured output parsed and matched the declared fields",
    "invalid_reason": "why it did not",
    "source_ref": "where the source text came from (back_translation, transform)",
    "source_text": "the source text the item was made from",
    "tokens_in": "prompt tokens",
    "tokens_out": "completion tokens",
    "latency_ms": "time the call took",
    "cost_usd": "litellm's cost estimate (0 for local models and cached responses; empty if unknown)",
    "cached": "whether the response came from the response cache",
    "finish_reason": "why the model stopped (stop, length, ...)",
    "created_at": "when the item was made (UTC, ISO 8601)",
    "meta": "JSON: anything else recorded with the item",
    "judge_score": "latest LLM-judge score (1-5), if judged",
    "prompt_id": "id of the prompt version",
    "prompt_name": "name of the prompt family",
    "prompt_version": "version of the prompt within its family",
    "template": "the prompt template",
    "system_prompt": "the system prompt",
    "prompt_variables": "JSON: every value each prompt variable could take",
    "run_params": "JSON: the run's parameters (api_base without any user:password part)",
    "run_created_at": "when the run started (UTC, ISO 8601)",
    "run_wall_s": "the run's wall-clock time in seconds",
    "run_role": "synthetic, or reference for imported real data",
    "tags": "JSON: tags given while exploring",
    "model_training_use": "what the model's terms say about training models on its outputs "
                          "(see Models and licence notes)",
}


def export_dataset(store: DuckStore, out_dir: str | Path, run_ids: list[str] | None = None,
                   statuses: list[str] | None = None, min_score: float | None = None,
                   item_ids: list[str] | None = None, title: str | None = None) -> dict:
    """Write a folder that ``datasets.load_dataset(out_dir)`` reads: ``data/train.parquet`` (the
    Parquet export's columns) and a ``README.md`` dataset card. Built in a temporary sibling folder
    and renamed into place; ``out_dir`` must not exist yet or be an empty folder."""
    from synth.analysis.metrics import measure_items

    out = Path(out_dir)
    _require_empty_target(out)
    frame = _frame_to_export(store, run_ids, statuses, min_score, item_ids)
    card = dataset_card(frame, _runs_of(store, frame), measure_items(store, frame), title,
                        store_coverage(store, item_ids=frame["item_id"]))
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        os.chmod(tmp, _umask_mode(0o777))  # an export is an ordinary folder
        (tmp / DATA_FILE).parent.mkdir()
        FORMATS[".parquet"].write(frame, tmp / DATA_FILE)
        (tmp / CARD_FILE).write_text(card, encoding="utf-8")
        os.replace(tmp, out)  # replaces an empty folder; fails if one appeared with files meanwhile
    except OSError as exc:
        raise SynthError(f"Could not write {out}: {exc}. Choose another --out folder.") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"out": str(out), "rows": len(frame), "files": [CARD_FILE, DATA_FILE]}


def export_dataset_zip(store: DuckStore, **options) -> bytes:
    """The dataset folder of ``export_dataset(store, ..., **options)`` as a zip, for a download."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "synth-dataset"
        result = export_dataset(store, folder, **options)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in result["files"]:
                zf.write(folder / name, f"{folder.name}/{name}")
        return buffer.getvalue()


def _require_empty_target(out: Path) -> None:
    _require_parent(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SynthError(f"{out} already exists and is not an empty folder. Choose a new folder name, "
                         "or move the old one away first.")


def _runs_of(store: DuckStore, frame: pd.DataFrame) -> pd.DataFrame:
    runs = store.runs()
    return runs[runs["run_id"].isin(set(frame["run_id"]))].reset_index(drop=True)


def dataset_card(frame: pd.DataFrame, runs: pd.DataFrame, measured: tuple[dict, dict],
                 title: str | None = None, coverage: CoverageSummary | None = None) -> str:
    """The README.md of a dataset folder: YAML front matter for the Hub and ``datasets``, then what
    the data is, how it was made, the licence notes of its models, its intrinsic metrics and, when
    the database holds reference data, its coverage of that data (``store_coverage``)."""
    title = (title or "").strip() or DEFAULT_TITLE
    sections = [_card_summary(frame, runs, title), _card_counts(frame), _card_licences(frame),
                _card_prompts(frame), _card_params(runs), _card_metrics(*measured), _card_coverage(coverage),
                _card_columns(frame)]
    return _front_matter(len(frame), title) + "\n\n".join(s for s in sections if s) + "\n"


def _front_matter(n: int, title: str) -> str:
    meta = {"pretty_name": title, "license": "other", "tags": ["synthetic"],
            "size_categories": [_size_category(n)],
            "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": DATA_FILE}]}]}
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n\n"


def _size_category(n: int) -> str:
    return next((label for bound, label in SIZE_CATEGORIES if n < bound), "n>100M")


def _card_summary(frame: pd.DataFrame, runs: pd.DataFrame, title: str) -> str:
    made = frame["created_at"].dropna()
    first, last = (made.min()[:10], made.max()[:10]) if len(made) else ("", "")
    span = f" on {first}" if first == last else f" between {first} and {last}"
    real = int((frame["run_role"] == "reference").sum())
    reference = f" ({real} of them real data imported for reference)" if real else ""
    return (f"# {literal_markdown(title)}\n\n"
            f"{len(frame)} text items{reference} from {len(runs)} run{'s' * (len(runs) != 1)} made with "
            f"Synth Studio{span}, "
            f"exported on {datetime.now(timezone.utc).date().isoformat()}. Every row carries its "
            f"provenance: model, prompt version, generation parameters, tokens, cost, review status "
            f"and judge score. The data is in `{DATA_FILE}` (split `train`).\n\n"
            "## Intrinsic evaluation\n\n"
            "The metrics below describe the data itself (diversity, repetition, length, validity, cost); "
            "they are not results of a model trained on it, and say nothing directly about how well "
            "such a model would do.")


def _card_counts(frame: pd.DataFrame) -> str:
    per_run = frame.groupby(["run_id", "run_name"], sort=False).size().reset_index(name="items")
    per_status = frame.groupby("status", sort=True).size().reset_index(name="items")
    per_run["run_id"] = per_run["run_id"].map(lambda r: f"`{r}`")  # our own ids: safe as code
    return ("## Items per run\n\n" + _table(["run", "run_id", "items"], per_run[["run_name", "run_id", "items"]],
                                             literal=("run_id",))
            + "\n\n## Items per status\n\n" + _table(["status", "items"], per_status))


def _card_licences(frame: pd.DataFrame) -> str:
    notes = model_notes(frame)
    rows = notes[["model", "maker", "licence", "training_use", "summary", "source"]]
    return ("## Models and licence notes\n\n"
            "What the terms of each model that wrote an item say about training models on its outputs "
            "(column `model_training_use` of the data). A model Synth Studio has no note for is marked "
            "unknown. This card sets no licence of its own (`license: other`): the dataset's owner "
            "decides one within these terms.\n\n"
            + _table(["model", "maker", "licence", "training use", "summary", "source"], rows)
            + f"\n\n{literal_markdown(licences.DISCLAIMER)}")


def model_notes(frame: pd.DataFrame) -> pd.DataFrame:
    """The licence note of every model in an export frame (imported items: no model, unknown)."""
    models = [m if isinstance(m, str) and m else None for m in frame["model"]]
    return licences.notes_table(models, _model_api_bases(frame))


def _model_api_bases(frame: pd.DataFrame) -> dict[str, str | None]:
    """Each model's api_base when every run that used it recorded one; otherwise none, so an
    ``openai/`` name also sent to OpenAI itself keeps OpenAI's (stricter) note."""
    bases: dict[str, str | None] = {}
    for model, group in frame.groupby("model", sort=False):
        found = [_api_base(p) for p in group["run_params"]]
        bases[model] = found[0] if all(found) else None
    return bases


def _card_prompts(frame: pd.DataFrame) -> str:
    used = frame.dropna(subset=["prompt_id"]).drop_duplicates("prompt_id")
    parts = ["## Prompts\n\nEach prompt version that made an exported item, verbatim."]
    for p in used.itertuples():
        variables = json.dumps(p.prompt_variables or {}, ensure_ascii=False, indent=2, sort_keys=True)
        parts.append(f"### {literal_markdown(p.prompt_name)}, version {p.prompt_version}\n\n"
                     f"Template:{_code(p.template)}\n\n"
                     f"System prompt:{_code(p.system_prompt) if p.system_prompt else ' (none)'}\n\n"
                     f"Variables:{_code(variables, 'json')}")
    without = int(frame["prompt_id"].isna().sum())
    if without:
        parts.append(f"{without} items have no prompt (imported, or made by a grammar).")
    return "\n\n".join(parts)


def _card_params(runs: pd.DataFrame) -> str:
    rows = []
    for run in runs.itertuples():
        params = from_json(run.params, {}) or {}
        rows.append([run.name, run.model, run.technique, *(params.get(k) for k in GENERATION_PARAMS)])
    return ("## Generation parameters per run\n\n"
            + _table(["run", "model", "technique", *GENERATION_PARAMS], pd.DataFrame(rows, dtype=object)))


def _card_metrics(values: dict, params: dict) -> str:
    from synth.analysis.metrics import METRICS

    rows = pd.DataFrame({"metric": [f"`{name}`" for name in METRICS],
                         "value": [format_number(values.get(name)) for name in METRICS],
                         "help": [info.help for info in METRICS.values()]})
    near = params.get("near_duplicate_rate", {})
    how = (f"Embeddings by `{literal_markdown(near.get('embed_model', ''))}`; near-duplicate cosine threshold "
           f"{near.get('threshold')}. Empty values could not be computed for this set."
           if near else "Empty values could not be computed for this set.")
    return ("## Metrics of the exported set\n\n"
            + _table(["metric", "value", "what it measures"], rows, literal=("metric",))
            + f"\n\n{how}")


def _card_coverage(summary: CoverageSummary | None) -> str:
    """Recall and precision against the reference data, overall and for the worst-covered clusters;
    nothing when there is no reference data at all."""
    from synth.analysis.coverage import WORST_COLUMNS, coverage_sentences, worst_rows

    if summary is None or not summary.reference_items:
        return ""
    head = "## Coverage of the real reference data\n\n"
    if not summary.measured:
        return head + literal_markdown(summary.reason)
    return (head + f"The exported synthetic items against the {summary.reference_items:,} real (reference) "
            "items of the database they come from, on the same embeddings (recall as coverage, Naeem et al. "
            "2020; precision, Kynkäänniemi et al. 2019):\n\n"
            + "\n".join(f"- {literal_markdown(s)}" for s in coverage_sentences(summary))
            + (f"\n\n### The {len(summary.worst)} worst-covered clusters (lowest recall first)\n\n"
               + _table(list(WORST_COLUMNS), pd.DataFrame(worst_rows(summary), dtype=object))
               if summary.worst else ""))


def _card_columns(frame: pd.DataFrame) -> str:
    rows = pd.DataFrame({"column": [f"`{c}`" for c in frame.columns],
                         "meaning": [COLUMN_HELP.get(c, "") for c in frame.columns]})
    return (f"## Columns of `{DATA_FILE}`\n\nColumns marked JSON hold JSON text.\n\n"
            + _table(["column", "meaning"], rows, literal=("column",)))




def _table(header: list[str], rows: pd.DataFrame, literal: tuple[str, ...] = ()) -> str:
    """A markdown table; every cell is escaped except those of the ``literal`` columns (our own
    markup of our own values)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows.to_dict(orient="records"):
        lines.append("| " + " | ".join(str(v) if k in literal else _cell(v) for k, v in row.items()) + " |")
    return "\n".join(lines)


def _cell(value) -> str:
    """A value as inert table text: no HTML, no markdown, no line breaks, no column breaks."""
    if is_missing(value):
        return ""
    return literal_markdown(" ".join(str(value).split()))




def _code(text: str, info: str = "text") -> str:
    """``text`` in a fenced code block whose fence is longer than any run of backticks inside it,
    so nothing in it is read as markdown or HTML."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"\n\n{fence}{info}\n{text}\n{fence}"
