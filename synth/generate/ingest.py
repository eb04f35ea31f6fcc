"""Import: texts from JSONL or CSV files become a run.

Reads: a .jsonl or .csv file. Writes: one run and its items (through the store, in one
transaction), or nothing if the file has any problem, holds a text longer than the
``max_item_chars`` setting, or was imported before (unless asked to import it again). The run's
params record the file's ``source_sha256``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.records import Item, PromptSpec, Run
from synth.store import DuckStore

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
MB = 1_000_000
# all-MiniLM-L6-v2 on 2 shared CPU cores (measured 2026-12-01): about 50 texts a second of 15 words,
# about 20 of 60 words; texts longer than LONG_TEXT_CHARS on average get the slower rate.
EMBED_RATE_SHORT, EMBED_RATE_LONG, LONG_TEXT_CHARS = 50, 20, 300
ROWS_NAMED = 5  # row numbers an error about over-long texts lists


def _file_bytes(path: Path, data: bytes | None) -> tuple[str, bytes]:
    """The file's kind (jsonl or csv) and its bytes (``data`` if given, else read from ``path``)."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise SynthError(f"{path.name}: unsupported file type {path.suffix or '(none)'}. "
                         "Give a .jsonl file (one JSON object per line) or a .csv file with a header.")
    if data is None:
        if not path.is_file():
            raise SynthError(f"File not found: {path}. Check the path.")
        data = path.read_bytes()
    return kind, data


def read_records(path: str | Path, data: bytes | None = None) -> list[dict[str, Any]]:
    """Rows of a JSONL or CSV file as dicts. ``data`` overrides reading ``path`` (uploads)."""
    path = Path(path)
    kind, data = _file_bytes(path, data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SynthError(f"{path.name} is not UTF-8 text. Save it as UTF-8 and try again.") from None
    rows: list[dict[str, Any]] = []
    if kind == "jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SynthError(f"{path.name} line {number} is not valid JSON ({exc.msg}). "
                                 "Each line of a JSONL file must be one JSON object.") from None
            if not isinstance(row, dict):
                raise SynthError(f"{path.name} line {number} is a JSON {type(row).__name__}, not an "
                                 "object. Each line must look like {\"text\": \"...\"}.")
            rows.append(row)
    else:
        try:
            reader = csv.DictReader(io.StringIO(text))
            rows = [dict(r) for r in reader]
        except csv.Error as exc:
            raise SynthError(f"{path.name} is not valid CSV ({exc}). Give a CSV file with a header row.") from None
        if reader.fieldnames is None or any(None in r for r in rows):
            raise SynthError(f"{path.name} is not valid CSV: every row must have the header's columns.")
    if not rows:
        raise SynthError(f"{path.name} holds no rows. Give a file with at least one item.")
    return rows


def texts_from_records(rows: list[dict[str, Any]], text_column: str, source: str) -> list[str]:
    """The non-empty text of every row, or an error naming the columns there are."""
    columns = sorted({k for r in rows for k in r})
    if not any(text_column in r for r in rows):
        raise SynthError(f"{source} has no column {text_column!r}. Its columns are: "
                         f"{', '.join(columns)}. Choose one with --text-column.")
    texts = []
    for number, row in enumerate(rows, start=1):
        value = row.get(text_column)
        if not isinstance(value, str) or not value.strip():
            raise SynthError(f"{source} row {number}: column {text_column!r} is empty or not text. "
                             "Remove the row or fill it in.")
        texts.append(value.strip())
    check_lengths(texts, source)
    return texts


def check_lengths(texts: list[str], source: str) -> None:
    """Refuse texts longer than the ``max_item_chars`` setting, naming the first rows (1-based)."""
    cap = settings.get("max_item_chars")
    long = [number for number, text in enumerate(texts, start=1) if len(text) > cap]
    if not long:
        return
    rows = ", ".join(str(n) for n in long[:ROWS_NAMED])
    if len(long) > ROWS_NAMED:
        rows += f" and {len(long) - ROWS_NAMED} more"
    longest = max(len(texts[n - 1]) for n in long)
    raise SynthError(f"{source}: {len(long)} row(s) longer than {cap:,} characters, the most one item may "
                     f"have: row {rows} (the longest has {longest:,}). Nothing was read in. Split or "
                     "shorten those texts, or raise the limit with SYNTH_MAX_ITEM_CHARS.")


def source_hash(data: bytes) -> str:
    """The sha256 of a file's bytes: what tells a second import of the same file."""
    return hashlib.sha256(data).hexdigest()


def import_notice(source: str, n_rows: int, n_bytes: int, mean_chars: float) -> str | None:
    """What to tell the user about a large import (past the ``import_notice_rows`` rows or the
    ``import_notice_mb`` MB setting): its size and roughly how long embedding it takes; else None."""
    if n_rows <= settings.get("import_notice_rows") and n_bytes <= settings.get("import_notice_mb") * MB:
        return None
    rate = EMBED_RATE_LONG if mean_chars > LONG_TEXT_CHARS else EMBED_RATE_SHORT
    seconds = n_rows / rate
    took = f"{seconds:.0f} s" if seconds < 90 else (f"{seconds / 60:.0f} min" if seconds < 5400
                                                    else f"{seconds / 3600:.1f} h")
    return (f"{source} is large: {n_rows:,} rows, {n_bytes / MB:.1f} MB. Embedding them takes roughly "
            f"{took} at about {rate} texts a second on 2 CPU cores (texts embedded before are skipped).")


def import_records(rows: list[dict[str, Any]], text_column: str = "text", run_name: str | None = None,
                   source: str = "upload", reference: bool = False) -> tuple[Run, list[Item]]:
    """``rows`` as one run of technique ``import`` (not yet saved); other columns go to ``meta``."""
    texts = texts_from_records(rows, text_column, source)
    run = Run(name=run_name or f"import {Path(source).name}", technique="import",
              params={"text_column": text_column}, source=source,
              role="reference" if reference else "synthetic")
    items = [
        Item(text=text, idx=i, model=None, cost_usd=0.0, status="imported",
             meta={k: v for k, v in row.items() if k != text_column})
        for i, (text, row) in enumerate(zip(texts, rows))
    ]
    return run, items


def import_file(path: str | Path, text_column: str = "text", run_name: str | None = None,
                data: bytes | None = None, reference: bool = False, store: DuckStore | None = None,
                again: bool = False, on_notice: Callable[[str], None] | None = None
                ) -> tuple[Run, list[Item]]:
    """Read a JSONL or CSV file as a run (not yet saved); raises if any row is bad. A reference
    run holds real data to compare the synthetic set with. With a ``store``, a file whose bytes
    (and text column) a run there already holds is refused unless ``again``. ``on_notice`` gets
    the note about a large file (see :func:`import_notice`) before anything is embedded."""
    path = Path(path)
    _, data = _file_bytes(path, data)
    sha = source_hash(data)
    if store is not None and not again:
        _refuse_second_import(store, sha, text_column, path.name)
    rows = read_records(path, data)
    run, items = import_records(rows, text_column, run_name, source=path.name, reference=reference)
    run.params.update(source_sha256=sha, source_bytes=len(data))
    notice = import_notice(path.name, len(items), len(data), sum(len(i.text) for i in items) / len(items))
    if notice and on_notice is not None:
        on_notice(notice)
    return run, items


def _refuse_second_import(store: DuckStore, sha: str, text_column: str, source: str) -> None:
    held = store.find_import(sha, text_column)
    if held is None:
        return
    when = held["created_at"].strftime("%Y-%m-%d %H:%M")
    raise SynthError(f"{source} is already imported: run '{held['name']}' ({held['run_id']}, {when}) holds "
                     f"the same file (sha256 {sha[:12]}, text column {text_column!r}). Nothing was imported. "
                     "To add it again anyway, pass --again (CLI) or tick \"Import again\" (page).")


def _ts(value: Any) -> datetime:
    return datetime.fromisoformat(str(value)) if value else datetime(2026, 1, 1)


def restore_export(store: DuckStore, path: str | Path) -> list[str]:
    """Load a JSONL written by ``synth export`` back with its runs, prompts and provenance.

    Runs already in the database are skipped. Returns the ids of the runs added.
    """
    rows = read_records(path)
    missing = {"run_id", "run_name", "technique", "text", "idx"} - set(rows[0])
    if missing:
        raise SynthError(f"{Path(path).name} is not a Synth Studio export (missing {sorted(missing)}). "
                         "Load plain texts with: python -m synth import FILE --text-column COLUMN")
    check_lengths([str(r["text"]) for r in rows], Path(path).name)
    existing = set(store.runs()["run_id"])
    by_run: dict[str, list[dict]] = {}
    for row in rows:
        by_run.setdefault(row["run_id"], []).append(row)
    batch = []
    for run_id, group in by_run.items():
        if run_id in existing:
            continue
        first = group[0]
        prompt = None
        if first.get("template"):
            prompt = PromptSpec(template=first["template"], variables=first.get("prompt_variables") or {},
                                system_prompt=first.get("system_prompt") or "",
                                name=first.get("prompt_name") or "default")
        run = Run(name=first["run_name"], technique=first["technique"], run_id=run_id,
                  role=first.get("run_role") or "synthetic",
                  model=first.get("model"), params=first.get("run_params") or {},
                  created_at=_ts(first.get("run_created_at")), wall_s=float(first.get("run_wall_s") or 0))
        items = [
            Item(text=r["text"], idx=int(r["idx"]), item_id=r.get("item_id") or f"it_{run_id}_{r['idx']}",
                 rendered_prompt=r.get("rendered_prompt"), variables=r.get("variables") or {},
                 model=r.get("model"), params=r.get("params") or {},
                 tokens_in=int(r.get("tokens_in") or 0), tokens_out=int(r.get("tokens_out") or 0),
                 latency_ms=float(r.get("latency_ms") or 0.0), cost_usd=r.get("cost_usd"),
                 finish_reason=r.get("finish_reason"), status=r.get("status") or "new",
                 created_at=_ts(r.get("created_at")), meta=r.get("meta") or {})
            for r in group
        ]
        batch.append((run, items, prompt))
    store.save_runs(batch)
    return [run.run_id for run, _, _ in batch]
