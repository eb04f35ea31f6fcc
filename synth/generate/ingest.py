"""Import: texts from JSONL or CSV files become a run.

Reads: a .jsonl or .csv file. Writes: one run and its items (through the store, in one
transaction), or nothing if the file has any problem.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from synth.kernel.errors import SynthError
from synth.kernel.records import Item, PromptSpec, Run
from synth.store import DuckStore

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


def read_records(path: str | Path, data: bytes | None = None) -> list[dict[str, Any]]:
    """Rows of a JSONL or CSV file as dicts. ``data`` overrides reading ``path`` (uploads)."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise SynthError(f"{path.name}: unsupported file type {path.suffix or '(none)'}. "
                         "Give a .jsonl file (one JSON object per line) or a .csv file with a header.")
    if data is None:
        if not path.is_file():
            raise SynthError(f"File not found: {path}. Check the path.")
        data = path.read_bytes()
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
    return texts


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
                data: bytes | None = None, reference: bool = False) -> tuple[Run, list[Item]]:
    """Read a JSONL or CSV file as a run (not yet saved); raises if any row is bad. A reference
    run holds real data to compare the synthetic set with."""
    rows = read_records(path, data)
    return import_records(rows, text_column, run_name, source=str(Path(path).name), reference=reference)


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
