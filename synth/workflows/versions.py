"""Prompt versions: list them, name them, see what changed, follow metrics across them.

Reads: the ``prompts`` table (each version with its parent, diff and changes), runs and their
metrics. Writes: new versions (``save_version``) and version names. A version is saved whenever
a run uses a template, system prompt, variables or parameters that no saved version has.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import pandas as pd

from synth.analysis.comparable import COMPARABLE_METRICS, at_common_size, run_samples
from synth.analysis.metrics import METRIC_NAMES, compute_run_metrics
from synth.generate.config import RunConfig
from synth.generate.techniques import get_technique
from synth.kernel.errors import SynthError
from synth.kernel.records import (
    from_json,
    render_version,
    version_changes,
    version_diff,
)
from synth.store import DuckStore, in_session

# Metrics a trend chart offers first.
TREND_METRICS = ("distinct_2", "self_bleu", "vendi_score", "mean_pairwise_cosine_distance",
                 "near_duplicate_rate", "cluster_entropy", "judge_score_mean", "validity_rate",
                 "length_mean", "cost_usd")


@dataclass
class Version:
    """One prompt version as the pages and the CLI show it."""

    prompt_id: str
    name: str
    version: int
    label: str | None
    parent_id: str | None
    changes: list[str]
    diff: str
    template: str
    system_prompt: str
    variables: dict
    params: dict
    n_runs: int
    created_at: str

    @property
    def title(self) -> str:
        from synth.workflows.pipeline import version_name

        return version_name(self.name, self.version, self.label)

    def to_dict(self) -> dict:
        return {**asdict(self), "title": self.title}


def _version(row: dict) -> Version:
    return Version(prompt_id=row["prompt_id"], name=row["name"], version=int(row["version"]),
                   label=row["label"] if isinstance(row["label"], str) else None,
                   parent_id=row["parent_id"] if isinstance(row["parent_id"], str) else None,
                   changes=from_json(row["changes"], []), diff=row["diff"] if isinstance(row["diff"], str) else "",
                   template=row["template"], system_prompt=row["system_prompt"] or "",
                   variables=from_json(row["variables"], {}), params=from_json(row["params"], {}),
                   n_runs=int(row["n_runs"]), created_at=str(row["created_at"]))


def list_versions(store: DuckStore, name: str | None = None) -> list[Version]:
    """Every version (of the prompt ``name``, or of all prompts), oldest first."""
    return [_version(r) for r in store.prompts(name).to_dict(orient="records")]


def prompt_names(store: DuckStore) -> list[str]:
    return list(dict.fromkeys(v.name for v in list_versions(store)))


_REF = re.compile(r"^(?P<name>.+?)(?:\s+v|@v?)(?P<version>\d+)$")


def resolve_version(store: DuckStore, ref: str) -> Version:
    """A version by id (``p_...``), by ``NAME v3`` / ``NAME@3``, by ``NAME@LABEL``, or by its label."""
    ref = (ref or "").strip()
    versions = list_versions(store)
    found = [v for v in versions if v.prompt_id == ref or v.title == ref]
    match = _REF.match(ref)
    if not found and match:
        found = [v for v in versions if v.name == match["name"] and v.version == int(match["version"])]
    if not found and "@" in ref:
        name, label = ref.rsplit("@", 1)
        found = [v for v in versions if v.name == name and v.label == label]
    if not found:
        found = [v for v in versions if v.label == ref]
    if len(found) > 1:
        raise SynthError(f"{ref!r} names versions of several prompts ({', '.join(v.title for v in found)}). "
                         "Write NAME@LABEL or NAME v3.")
    if not found:
        raise SynthError(f"No prompt version {ref!r}. Name one as 'NAME v3', 'NAME@LABEL' or by its id; "
                         "list them with: python -m synth prompts list")
    return found[0]


def name_version(store: DuckStore, ref: str, label: str | None) -> Version:
    """Give a version a name (None or "" clears it); return the version as saved."""
    version = resolve_version(store, ref)
    store.name_version(version.prompt_id, label)
    return resolve_version(store, version.prompt_id)


def _spec(cfg: RunConfig):
    cfg.validate()
    technique = get_technique(cfg.technique)
    if not technique.versioned:
        raise SynthError(f"The {cfg.technique} technique has no prompt to version.")
    return technique.version(cfg)


def save_version(store: DuckStore, cfg: RunConfig) -> Version:
    """Save the prompt version ``cfg`` describes without running it (the same version if nothing
    changed); a template technique only."""
    return resolve_version(store, store.save_prompt(_spec(cfg)))


@dataclass
class Preview:
    """What running or saving ``cfg`` would do to the prompt's versions."""

    existing: Version | None  # the saved version it is, if nothing changed
    parent: Version | None  # else the version it would be edited from
    changes: list[str]
    diff: str


def preview_version(store: DuckStore, cfg: RunConfig) -> Preview:
    """Whether ``cfg`` is a saved version, or which new version (changes and diff) it would make."""
    spec = _spec(cfg)
    versions = list_versions(store, spec.name)
    by_id = {v.prompt_id: v for v in versions}
    if spec.prompt_id in by_id:
        return Preview(by_id[spec.prompt_id], None, [], "")
    parent = by_id.get(spec.parent_id or "") or (versions[-1] if versions else None)
    old = None if parent is None else {"template": parent.template, "system_prompt": parent.system_prompt,
                                       "variables": parent.variables, "params": parent.params}
    new = {"template": spec.template, "system_prompt": spec.system_prompt, "variables": spec.variables,
           "params": spec.params}
    old_text = "" if parent is None else render_version(parent.template, parent.system_prompt, parent.variables,
                                                        parent.params)
    return Preview(None, parent, version_changes(old, new),
                   version_diff(old_text, spec.render(), parent.title if parent else "(none)", "new version"))


def diff_between(a: Version, b: Version) -> str:
    """A unified diff from version ``a`` to version ``b`` (any two, not only parent and child)."""
    return version_diff(render_version(a.template, a.system_prompt, a.variables, a.params),
                        render_version(b.template, b.system_prompt, b.variables, b.params), a.title, b.title)


def config_for(store: DuckStore, version: Version, **overrides) -> RunConfig:
    """A run configuration that makes items with ``version``: its template, system prompt,
    variables and parameters, and the other settings of the newest run of it or its prompt."""
    # The version's own newest run, else the newest run of any version of the prompt (a version
    # saved without running has none): its server, output fields, concurrency and the like.
    base = store.newest_run_config(version.name, version.prompt_id)
    base = {k: v for k, v in base.items() if k in RunConfig.__dataclass_fields__}
    base.update({k: v for k, v in version.params.items() if k in RunConfig.__dataclass_fields__})
    base.update(template=version.template, system_prompt=version.system_prompt, variables=version.variables,
                prompt_name=version.name, version_label=None, prompt_parent=None, samples=None, run_name=None)
    base.update(overrides)
    return RunConfig.from_dict(base)


def common_columns(metric: str) -> tuple[str, str, str]:
    """The trend columns of a size-dependent metric at the common size: mean, low, high."""
    return f"{metric}_common", f"{metric}_common_low", f"{metric}_common_high"


@in_session
def version_trends(store: DuckStore, name: str, metrics: list[str] | None = None) -> pd.DataFrame:
    """Metrics across the successive versions of the prompt ``name``: one row per version that has
    runs (the mean over its runs), oldest first, with its changes from the parent.

    The size-dependent metrics among ``metrics`` also come at one common size for every version
    (each version's largest run, subsampled; see :mod:`synth.analysis.comparable`): columns
    ``METRIC_common``, ``METRIC_common_low`` and ``METRIC_common_high`` (the 95 % interval), with
    ``n_items`` (that run's size), ``common_n`` (the common size) and ``comparable`` ("too small
    to compare" for a version whose largest run is under the stated minimum: no common value)."""
    metrics = list(metrics or METRIC_NAMES)
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown:
        raise SynthError(f"Unknown metric(s) {', '.join(unknown)}. Known: {', '.join(METRIC_NAMES)}.")
    versions = list_versions(store, name)
    if not versions:
        raise SynthError(f"No prompt called {name!r}. Prompts: {', '.join(prompt_names(store)) or 'none yet'}.")
    runs = store.runs()
    rows, largest = [], {}
    for v in versions:
        run_ids = runs.loc[runs["prompt_id"] == v.prompt_id, "run_id"].tolist()
        if not run_ids:
            continue
        per_run = pd.DataFrame([compute_run_metrics(store, r) for r in run_ids], columns=METRIC_NAMES)
        means = per_run[metrics].astype(float).mean(skipna=True)
        counts = per_run["count"].astype(float).tolist()
        # the largest run (the newest of equals) stands for the version at the common size
        pick = max(range(len(run_ids)), key=lambda i: (counts[i], i))
        largest[v.prompt_id] = run_ids[pick]
        rows.append({"prompt_id": v.prompt_id, "version": v.version, "title": v.title,
                     "changes": ", ".join(v.changes), "n_runs": len(run_ids), "n_items": int(counts[pick]),
                     **{m: (None if pd.isna(means[m]) else float(means[m])) for m in metrics}})
    sized = tuple(m for m in COMPARABLE_METRICS if m in metrics)
    extra = [c for m in sized for c in common_columns(m)]
    columns = ["prompt_id", "version", "title", "changes", "n_runs", "n_items", "common_n", "comparable",
               *metrics, *extra]
    if not rows:
        return pd.DataFrame(rows, columns=columns)
    samples = run_samples(store, list(largest.values()))
    common = at_common_size({pid: samples[rid] for pid, rid in largest.items()}, sized or ("distinct_2",))
    for row in rows:
        row["common_n"] = common.m
        row["comparable"] = common.status(row["prompt_id"])
        for m in sized:
            iv = common.value(row["prompt_id"], m)
            for column, value in zip(common_columns(m), (iv.mean, iv.low, iv.high) if iv else (None,) * 3):
                row[column] = value
    return pd.DataFrame(rows, columns=columns)


def trend_chart_frame(trends: pd.DataFrame, metrics: list[str]) -> tuple[pd.DataFrame, dict[str, tuple]]:
    """What a trend chart plots: each size-dependent metric at the common size (empty for a version
    too small to compare), the others as measured; and per plotted common-size metric its error
    bars (distance up to the high end, down to the low end)."""
    frame = trends.copy()
    errors = {}
    for m in metrics:
        mean, low, high = common_columns(m)
        if mean in frame:
            frame[m] = frame[mean]
            errors[m] = ((frame[high] - frame[mean]).tolist(), (frame[mean] - frame[low]).tolist())
    return frame, errors

