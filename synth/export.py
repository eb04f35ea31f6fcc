"""Export: items with their provenance to JSONL, CSV or Parquet.

Reads: items, runs and prompts. Writes: one file, atomically (a temporary file renamed into
place), so a failed export never leaves a half-written file. API keys are never stored, so they
cannot appear here; ``api_base`` is stored with any user:password part removed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from synth.errors import SynthError
from synth.store import DuckStore, run_filter

EXPORT_FORMATS = (".jsonl", ".csv", ".parquet")
JSON_COLUMNS = ("variables", "params", "meta", "prompt_variables", "run_params", "fields", "tags")


def export_frame(store: DuckStore, run_ids: list[str] | None = None, statuses: list[str] | None = None,
                 min_score: float | None = None, item_ids: list[str] | None = None) -> pd.DataFrame:
    """One row per item with everything needed to know how it was made; optionally only items with
    these review statuses and a latest judge score of at least ``min_score``."""
    where, params = run_filter("i", run_ids)
    clauses = [where[len("WHERE "):]] if where else []
    if statuses:
        clauses.append(f"i.status IN ({', '.join('?' * len(statuses))})")
        params += list(statuses)
    if min_score is not None:
        clauses.append("j.judge_score >= ?")
        params.append(min_score)
    if item_ids is not None:
        clauses.append("i.item_id IN (SELECT item_id FROM wanted_items)")
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    frame = store.frame_with(f"""
        SELECT i.item_id, i.run_id, r.name AS run_name, r.technique, i.idx, i.text, i.status,
               i.version, i.model, i.params, i.variables, i.rendered_prompt, i.fields, i.valid,
               i.invalid_reason, i.source_ref, i.source_text, i.tokens_in, i.tokens_out,
               i.latency_ms, i.cost_usd, i.cached, i.finish_reason, i.created_at, i.meta,
               j.judge_score, i.prompt_id, p.name AS prompt_name, p.version AS prompt_version,
               p.template, p.system_prompt, p.variables AS prompt_variables, r.params AS run_params,
               r.created_at AS run_created_at, r.wall_s AS run_wall_s, r.role AS run_role, i.tags
        FROM items i JOIN runs r USING (run_id) LEFT JOIN prompts p ON p.prompt_id = i.prompt_id
        LEFT JOIN (SELECT item_id, arg_max(score, created_at) AS judge_score
                   FROM judgements GROUP BY item_id) j ON j.item_id = i.item_id
        {where}
        ORDER BY r.created_at, i.run_id, i.idx""", params,
        {"wanted_items": pd.DataFrame({"item_id": list(item_ids or [])})})
    for column in JSON_COLUMNS:
        frame[column] = frame[column].map(lambda v: json.loads(v) if isinstance(v, str) else v)
    for column in ("created_at", "run_created_at"):
        frame[column] = frame[column].map(lambda v: v.isoformat() if pd.notna(v) else None)
    return frame


def export_items(store: DuckStore, out: str | Path, run_ids: list[str] | None = None,
                 statuses: list[str] | None = None, min_score: float | None = None,
                 item_ids: list[str] | None = None) -> int:
    """Write items to ``out`` (format from its suffix); return the number of rows written."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise SynthError(f"Cannot export to {out.name}: use a file name ending in "
                         f"{', '.join(EXPORT_FORMATS)}.")
    if not out.parent.exists():
        raise SynthError(f"Folder {out.parent} does not exist. Create it or choose another --out.")
    frame = export_frame(store, run_ids, statuses, min_score, item_ids)
    if frame.empty:
        raise SynthError("There are no items to export with these filters. Generate or import some, "
                         "or loosen the filters.")
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=suffix, dir=out.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; an export is an ordinary file
    try:
        if suffix == ".jsonl":
            with open(tmp, "w", encoding="utf-8") as fh:
                for record in frame.astype(object).where(frame.notna(), None).to_dict(orient="records"):
                    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            # Tabular formats hold the nested columns as JSON strings.
            flat = frame.copy()
            for column in JSON_COLUMNS:
                flat[column] = flat[column].map(lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True))
            if suffix == ".csv":
                flat.to_csv(tmp, index=False)
            else:
                flat.to_parquet(tmp, index=False)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return len(frame)


def export_bytes(store: DuckStore, fmt: str, **filters) -> bytes:
    """The export as bytes in format ``fmt`` (".jsonl", ".csv" or ".parquet"), for a download."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"export{fmt}"
        export_items(store, out, **filters)
        return out.read_bytes()
