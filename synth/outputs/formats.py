"""Export file formats: a registry of file endings with their names, media types and writers,
and the flat form of an export that CSV and Parquet hold. Light to import (no pandas import here),
so the CLI can list the formats without loading the data stack."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from synth.kernel.registry import Registry

if TYPE_CHECKING:
    import pandas as pd

JSON_COLUMNS = ("variables", "params", "meta", "prompt_variables", "run_params", "fields", "tags")
# Text columns that are often all empty: typed as text anyway, so every export has one schema.
OPTIONAL_TEXT_COLUMNS = ("invalid_reason", "source_ref", "source_text")


def flat_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The export with its nested columns as JSON strings: what CSV and Parquet hold."""
    flat = frame.copy()
    for column in JSON_COLUMNS:
        flat[column] = flat[column].map(lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True))
    for column in OPTIONAL_TEXT_COLUMNS:
        flat[column] = flat[column].astype("str")
    return flat


def _write_jsonl(frame: pd.DataFrame, path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for record in frame.astype(object).where(frame.notna(), None).to_dict(orient="records"):
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


@dataclass(frozen=True)
class ExportFormat:
    """A file format items can be exported to: its file ending, a name for people, its media type
    and the one writer of the format."""

    suffix: str
    title: str
    mime: str
    write: Callable[[pd.DataFrame, str | Path], None]


FORMATS = Registry("export format")
for _format in (ExportFormat(".jsonl", "JSON Lines", "application/jsonl", _write_jsonl),
                ExportFormat(".csv", "CSV", "text/csv", lambda f, p: flat_frame(f).to_csv(p, index=False)),
                ExportFormat(".parquet", "Parquet", "application/vnd.apache.parquet",
                             lambda f, p: flat_frame(f).to_parquet(p, index=False))):
    FORMATS.register(_format.suffix, _format)
EXPORT_FORMATS = tuple(FORMATS)
