"""Prompt versions: list them, name them, see what changed, follow metrics across them.

Reads: the ``prompts`` table (each version with its parent, diff and changes), runs and their
metrics. Writes: new versions (``save_version``) and version names. A version is saved whenever
a run uses a template, system prompt, variables or parameters that no saved version has.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import pandas as pd

from synth.analysis.comparable import COMPARABLE_METRICS, at_common_size, run_samples
from synth.analysis.metrics import METRIC_NAMES, compute_run_metrics, format_metric, metric_label
from synth.generate.config import VERSION_PARAMS, RunConfig
from synth.generate.techniques import get_technique
from synth.kernel.errors import SynthError
from synth.kernel.records import (
    from_json,
    render_version,
    version_changes,
    version_diff,
)
from synth.kernel.text import format_number, is_missing
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
    summary: list[str] = field(default_factory=list)  # what changed from the parent, in words

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
    """Every version (of the prompt ``name``, or of all prompts), oldest first, each with what
    changed from its parent in words (``summary``)."""
    found = [_version(r) for r in store.prompts(name).to_dict(orient="records")]
    by_id = {v.prompt_id: v for v in found}
    for v in found:
        parent = by_id.get(v.parent_id or "")
        v.summary = (["new prompt"] if v.parent_id is None else
                     describe_changes(_parts(parent), _parts(v)) if parent else list(v.changes))
    return found


def prompt_names(store: DuckStore) -> list[str]:
    return list(dict.fromkeys(v.name for v in list_versions(store)))


def version_counts(store: DuckStore) -> dict[str, int]:
    """How many versions each prompt has, by prompt name (in name order)."""
    counts: dict[str, int] = {}
    for v in list_versions(store):
        counts[v.name] = counts.get(v.name, 0) + 1
    return counts


def most_versioned(store: DuckStore) -> str | None:
    """The prompt with the most versions (of equals, the one used last: its newest run, else its
    newest version; then the first by name): the one whose history says the most. None when
    there is no prompt."""
    found = list_versions(store)
    if not found:
        return None
    runs = _runs_by_version(store)
    score: dict[str, list] = {}
    for v in found:
        count_last = score.setdefault(v.name, [0, pd.Timestamp.min])
        count_last[0] += 1
        times = [r["created_at"] for r in runs.get(v.prompt_id, []) if not is_missing(r["created_at"])]
        count_last[1] = max([count_last[1], *map(pd.Timestamp, times or [v.created_at])])
    return min(score, key=lambda n: (-score[n][0], -score[n][1].value, n))


# -- what changed, in words ------------------------------------------------------------------

# How a person reads each versioned parameter (the Generate form's words).
PARAM_LABELS = {"technique": "technique", "model": "model", "temperature": "temperature", "top_p": "top_p",
                "max_tokens": "max tokens", "sampling_mode": "combining values", "examples": "seed examples",
                "k_examples": "examples per call", "avoid": "texts to avoid", "k_avoid": "texts to avoid per call",
                "output": "declared output"}
assert set(PARAM_LABELS) == set(VERSION_PARAMS), "every versioned parameter needs a label"
# The ways of combining variable values (RunConfig.sampling_mode), as the form and notes say them.
SAMPLING_MODE_LABELS = {"product": "every combination in turn", "random": "random draws"}
MISSING = "—"  # shown where a value is not recorded
NO_PARAMS_NOTE = ("{title} recorded no parameters (it came from the demo data or an import), so only "
                  "its prompt text is compared.")


def _parts(v: Version) -> dict:
    return {"template": v.template, "system_prompt": v.system_prompt, "variables": v.variables,
            "params": v.params}


def format_param(name: str, value) -> str:
    """A versioned parameter's value as a person reads it: no ``None`` or ``null``, lists as counts."""
    if isinstance(value, (list, tuple)):
        return f"{len(value)}" if value else "none"
    if is_missing(value):
        return {"top_p": "off", "output": "none"}.get(name, MISSING)
    if name == "sampling_mode":
        return SAMPLING_MODE_LABELS.get(value, str(value))
    if name == "output" and isinstance(value, dict):
        if value.get("fields"):
            return "fields " + ", ".join(map(str, value["fields"]))
        return "a JSON schema" if value.get("schema") else "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return format_number(value, digits=4)
    return str(value)


def _few(values: list, most: int = 3) -> str:
    shown = ", ".join(map(str, values[:most]))
    return shown + (f" and {len(values) - most} more" if len(values) > most else "")


def describe_changes(old: dict | None, new: dict) -> list[str]:
    """What changed from version ``old`` to ``new`` (dicts with template, system_prompt, variables
    and params), in words: "template edited", "temperature 0.7 → 0.9", "variable {tone} added",
    "values of {product}: 1 added (x), 2 removed (y, z)". A parameter ``old`` did not record (a
    version from the demo data or an import records none) is not a change. ``["new prompt"]``
    without ``old``."""
    if old is None:
        return ["new prompt"]
    words = []
    if (old.get("template") or "") != (new.get("template") or ""):
        words.append("template edited")
    old_sys, new_sys = (old.get("system_prompt") or "").strip(), (new.get("system_prompt") or "").strip()
    if old_sys != new_sys:
        words.append("system prompt " + ("added" if not old_sys else "removed" if not new_sys else "edited"))
    old_vars, new_vars = old.get("variables") or {}, new.get("variables") or {}
    for name in sorted(set(old_vars) | set(new_vars)):
        if name not in old_vars:
            words.append(f"variable {{{name}}} added")
        elif name not in new_vars:
            words.append(f"variable {{{name}}} removed")
        elif list(old_vars[name]) != list(new_vars[name]):
            added = [x for x in new_vars[name] if x not in old_vars[name]]
            removed = [x for x in old_vars[name] if x not in new_vars[name]]
            parts = ([f"{len(added)} added ({_few(added)})"] if added else []) + \
                    ([f"{len(removed)} removed ({_few(removed)})"] if removed else [])
            words.append(f"values of {{{name}}}: " + (", ".join(parts) or "reordered"))
    old_p, new_p = old.get("params") or {}, new.get("params") or {}
    order = [*VERSION_PARAMS, *sorted(set(old_p) - set(VERSION_PARAMS))]
    for key in order:
        if key not in old_p or key not in new_p or old_p[key] == new_p[key]:
            continue
        a, b = old_p[key], new_p[key]
        label = PARAM_LABELS.get(key, key)
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
            words.append(f"{label} edited")
        else:
            words.append(f"{label} {format_param(key, a)} → {format_param(key, b)}")
    return words


def changes_between(a: Version, b: Version) -> list[str]:
    """What changed from version ``a`` to version ``b`` (any two), in words (see describe_changes)."""
    return describe_changes(_parts(a), _parts(b))


def compared_note(*compared: Version | None) -> str:
    """A sentence naming the first of ``compared`` that recorded no parameters (so no parameter
    is compared); "" when each recorded them."""
    bare = next((v for v in compared if v is not None and not v.params), None)
    return NO_PARAMS_NOTE.format(title=bare.title) if bare is not None else ""


def render_readable(v: Version, params: list[str] | None = None) -> str:
    """A version as text for a line-by-line diff, every value in words (no ``null``): the
    parameters named in ``params`` (default: those it recorded; none, and no section, for [])."""
    lines = ["[system prompt]", *(v.system_prompt.splitlines() or ["(none)"]), "", "[template]",
             *v.template.splitlines(), "", "[variables]"]
    lines += [f"{{{k}}} = {', '.join(map(str, vals))}" for k, vals in sorted(v.variables.items())]
    if params is not None and not params:
        return "\n".join(lines) + "\n"  # no parameter to show: no section
    keys = [k for k in (params if params is not None else v.params) if k in v.params]
    lines += ["", "[parameters]"]
    lines += [f"{PARAM_LABELS.get(k, k)} = {format_param(k, v.params[k])}" for k in keys] or ["(not recorded)"]
    return "\n".join(lines) + "\n"


def readable_diff(a: Version, b: Version, b_name: str | None = None) -> str:
    """A line-by-line diff from ``a`` to ``b`` in words; only the parameters both recorded."""
    shared = [k for k in [*VERSION_PARAMS, *sorted(set(a.params) - set(VERSION_PARAMS))]
              if k in a.params and k in b.params]
    return version_diff(render_readable(a, shared), render_readable(b, shared), a.title, b_name or b.title)


def _runs_by_version(store: DuckStore) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for run in store.runs().to_dict(orient="records"):
        if isinstance(run.get("prompt_id"), str):
            found.setdefault(run["prompt_id"], []).append(run)
    return found


def _from_runs(runs: list[dict], key: str) -> str:
    values = []
    for run in runs:
        value = run.get("model") if key == "model" else from_json(run.get("params"), {}).get(key)
        if not is_missing(value) and format_param(key, value) not in values:
            values.append(format_param(key, value))
    return ", ".join(values)


def version_table(store: DuckStore, name: str) -> pd.DataFrame:
    """The versions of the prompt ``name`` as a table a person reads, oldest first: version, name,
    runs, model, temperature, when it was created, id, what changed (in words). Nothing shows as
    None: a value the version did not record comes from its runs, else is a dash; a version is
    as old as its first run (a version loaded with the demo data or an import has no other date)."""
    runs = _runs_by_version(store)
    rows = []
    for v in list_versions(store, name):
        own = runs.get(v.prompt_id, [])
        created = min([v.created_at[:16], *(str(r["created_at"])[:16] for r in own if not is_missing(r["created_at"]))])
        rows.append({"version": v.version, "name": v.label or MISSING, "runs": v.n_runs,
                     **{key: (format_param(key, v.params[key]) if key in v.params else _from_runs(own, key) or MISSING)
                        for key in ("model", "temperature")},
                     "created": created, "id": v.prompt_id, "what changed": "; ".join(v.summary)})
    return pd.DataFrame(rows, columns=["version", "name", "runs", "model", "temperature", "created", "id",
                                       "what changed"])


def version_settings(v: Version) -> pd.DataFrame:
    """A version's recorded parameters as a table (setting, value), in words."""
    keys = [k for k in [*VERSION_PARAMS, *sorted(set(v.params) - set(VERSION_PARAMS))] if k in v.params]
    return pd.DataFrame([{"setting": PARAM_LABELS.get(k, k), "id": k, "value": format_param(k, v.params[k])}
                         for k in keys], columns=["setting", "id", "value"])


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
    summary: list[str] = field(default_factory=list)  # the changes in words (see describe_changes)
    note: str = ""  # a sentence when the parent recorded no parameters to compare
    lines: str = ""  # the diff from the parent line by line, in words (see readable_diff)


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
    draft = Version(prompt_id=spec.prompt_id, name=spec.name, version=len(versions) + 1, label=spec.label,
                    parent_id=parent.prompt_id if parent else None, changes=[], diff="", template=spec.template,
                    system_prompt=spec.system_prompt or "", variables=spec.variables, params=spec.params or {},
                    n_runs=0, created_at="")
    return Preview(None, parent, version_changes(old, new),
                   version_diff(old_text, spec.render(), parent.title if parent else "(none)", "new version"),
                   describe_changes(old, new), compared_note(parent),
                   readable_diff(parent, draft, "new version") if parent else render_readable(draft))


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
                     "changes": "; ".join(v.summary), "n_runs": len(run_ids), "n_items": int(counts[pick]),
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



def trend_table(trends: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """The trends of ``metrics`` as a table a person reads: one row per version (its title, runs,
    items), one column per metric headed by its label and id, each value in its unit (a
    size-dependent metric at the common size with its 95 % interval, or "too small to compare"; a
    dash where there is no value), then what changed."""
    rows = []
    for row in trends.to_dict(orient="records"):
        out = {"version": row["title"], "runs": row["n_runs"], "items": row["n_items"]}
        for m in metrics:
            mean, low, high = common_columns(m)
            if mean not in row:
                out[metric_label(m)] = format_metric(m, row.get(m))
            elif row.get("comparable"):
                out[metric_label(m)] = row["comparable"]
            elif is_missing(row[mean]):
                out[metric_label(m)] = MISSING
            else:
                out[metric_label(m)] = (f"{format_metric(m, row[mean])} "
                                        f"({format_metric(m, row[low])} to {format_metric(m, row[high])})")
        out["what changed"] = row["changes"] or MISSING
        rows.append(out)
    return pd.DataFrame(rows, columns=["version", "runs", "items", *map(metric_label, metrics), "what changed"])
