"""A/B comparison of two runs or two prompt versions.

Reads: runs, prompt versions, items, their metrics, clusters and map coordinates. Writes: the runs
a comparison needs when a side is a prompt version: both versions run on the same variable samples,
with the same seeds and the same n, so that differences come from the prompt, not from the draw;
and one clustering of the two runs' items alone, stored like the dataset's.

The size-dependent metrics are judged at a common sample size with bootstrap intervals
(:mod:`synth.analysis.comparable`): better or worse only when the intervals do not overlap, and
not at all when a side is under the stated minimum size.

``cluster_entropy`` is measured over the whole dataset's clusters, so it moves when unrelated runs
are added; ``cluster_entropy_pair`` is each side's entropy over one clustering of A and B together,
which depends on the two runs only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from synth.analysis.clustering import Clustering, current_clustering, entropy_bits
from synth.analysis.comparable import (
    UNJUDGED_METRICS,
    compare_at_common_size,
    run_samples,
)
from synth.analysis.metrics import compare, compute_run_metrics
from synth.generate.techniques import DEFAULT_TECHNIQUE, get_technique
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.records import Item, from_json
from synth.store import DuckStore, in_session
from synth.workflows.versions import Version, config_for, resolve_version

SAMPLE_PAIRS = 10
# cluster_entropy of each side over one clustering of A's and B's items alone, so that it does not
# move when unrelated runs are added to the database (cluster_entropy's clusters are the dataset's).
PAIR_METRIC = "cluster_entropy_pair"


@dataclass
class Side:
    """One side of a comparison: a run, or a prompt version (which may still need a run)."""

    ref: str
    kind: str  # "run" or "version"
    run_id: str | None = None
    version: Version | None = None

    @property
    def title(self) -> str:
        return self.version.title if self.version else self.ref


def resolve_side(store: DuckStore, ref: str) -> Side:
    """A run (by id or name) or else a prompt version (by id, ``NAME v3``, ``NAME@LABEL``)."""
    try:
        return Side(ref, "run", run_id=store.resolve_run(ref))
    except SynthError:
        pass
    try:
        return Side(ref, "version", version=resolve_version(store, ref))
    except SynthError:
        raise SynthError(f"{ref!r} is neither a run nor a prompt version. Give a run id or name, or a "
                         "version as 'NAME v3' or 'NAME@LABEL' (python -m synth prompts list).") from None


def side_model(store: DuckStore, side: Side) -> tuple[str | None, str | None]:
    """The model a side uses and the server it is sent to (for its licence note)."""
    if side.version is not None:
        cfg = config_for(store, side.version)
        return cfg.resolved_model(), cfg.api_base
    run = store.run_settings(side.run_id)
    return (run["model"] if isinstance(run["model"], str) else None), run["params"].get("api_base")


def _run_shape(store: DuckStore, run_id: str) -> dict:
    """n, seed and the variable values per item of a run."""
    run = store.run_settings(run_id)
    params, config = run["params"], run["config"]
    by_idx = store.variables_by_idx(run_id)
    n = int(config.get("n") or params.get("n") or len(by_idx))
    return {"n": n, "seed": params.get("seed", config.get("seed")),
            "samples": [{k: str(v) for k, v in by_idx.get(i, {}).items()} for i in range(n)]}


def pairing(store: DuckStore, run_a: str, run_b: str) -> dict:
    """Whether two runs are a fair pair: the same n, the same seed (both drawn with one), the same
    variable values per item."""
    return _pairing(_run_shape(store, run_a), _run_shape(store, run_b))


def _pairing(a: dict, b: dict) -> dict:
    same = 0
    for sa, sb in zip(a["samples"], b["samples"]):
        shared = set(sa) & set(sb)
        same += all(sa[k] == sb[k] for k in shared)
    n = min(a["n"], b["n"])
    # A run without a seed (an import, for one) was not drawn: it pairs with nothing.
    same_seed = a["seed"] is not None and a["seed"] == b["seed"]
    return {"same_n": a["n"] == b["n"], "same_seed": same_seed,
            "same_samples": same, "n": n, "paired": a["n"] == b["n"] and same_seed and same == n}


def _paired_run(store: DuckStore, version: Version, anchor: str, shape: dict) -> str | None:
    """The newest run of ``version`` that pairs with the run ``anchor`` (of shape ``shape``)."""
    runs = store.version_run_ids(version.prompt_id, exclude=anchor)
    return next((r for r in runs if _pairing(shape, _run_shape(store, r))["paired"]), None)


def _latest_run(store: DuckStore, version: Version, n: int | None, seed: int | None) -> str | None:
    for run_id in store.version_run_ids(version.prompt_id):
        shape = _run_shape(store, run_id)
        if (n is None or shape["n"] == n) and (seed is None or shape["seed"] == seed):
            return run_id
    return None


@in_session
def prepare_runs(store: DuckStore, a: Side, b: Side, n: int | None = None, seed: int | None = None,
                 fresh: bool = False, api_base: str | None = None,
                 on_item: Callable[[Item, int, int], None] | None = None) -> tuple[str, str, list[str]]:
    """The run of each side, making the runs a version side lacks: (run A, run B, runs made).

    A run side is used as it is. A version side reuses a run of that version that pairs with the
    other side (same n, seed and samples) unless ``fresh``; otherwise it runs the version on the
    other side's samples and seed. With two versions, A runs first (``n`` items, ``seed``)."""
    from synth.workflows.pipeline import generate_run

    made: list[str] = []
    overrides = {"api_base": api_base} if api_base else {}

    def run(version: Version, **kw) -> str:
        result = generate_run(store, config_for(store, version, **overrides, **kw), on_item)
        made.append(result.run_id)
        return result.run_id

    def follow(version: Version, anchor: str) -> str:
        shape = _run_shape(store, anchor)
        found = None if fresh else _paired_run(store, version, anchor, shape)
        if found:
            return found
        technique = get_technique(version.params.get("technique") or DEFAULT_TECHNIQUE)
        samples = shape["samples"] if technique.takes_samples else None
        return run(version, n=shape["n"], seed=shape["seed"] if shape["seed"] is not None else settings.get("seed"),
                   samples=samples)

    if a.kind == "run" and b.kind == "run":
        if n is not None or seed is not None or fresh:
            raise SynthError("--n, --seed and --fresh apply when a side is a prompt version; two runs are "
                             "compared as they are.")
        return a.run_id, b.run_id, made
    if a.kind == "run":
        return a.run_id, follow(b.version, a.run_id), made
    if b.kind == "run":
        return follow(a.version, b.run_id), b.run_id, made
    run_a = None if fresh else _latest_run(store, a.version, n, seed)
    if run_a is None:
        run_a = run(a.version, n=n or settings.DEFAULT_COMPARE_N, seed=settings.get("seed") if seed is None else seed,
                    samples=None)
    return run_a, follow(b.version, run_a), made


@dataclass
class Comparison:
    """Everything the comparison page and ``compare --json`` show."""

    a: dict
    b: dict
    pairing: dict
    metrics: pd.DataFrame  # metric, a, b, delta, change (B relative to A)
    clusters: pd.DataFrame  # cluster, cluster_name, share_a, share_b, difference
    samples: pd.DataFrame  # idx, variables, text_a, text_b
    points: pd.DataFrame | None = None  # the map points of both runs, with a "side" column
    made: list[str] = field(default_factory=list)
    # the size-dependent metrics at a common size: metric, m, a, a_low, a_high, b, b_low, b_high,
    # verdict (B's value against A's), change
    common: pd.DataFrame | None = None
    common_n: dict = field(default_factory=dict)  # m, min_items, too_small (the letters of small sides)
    # the clustering of A and B together that cluster_entropy_pair is measured over: clustering_id,
    # method, k, n_items, params, label
    pair_clustering: dict = field(default_factory=dict)
    # how the items side by side are paired (see ``pairing_summary``): by, matched, n_a, n_b
    items_paired: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        def records(frame: pd.DataFrame) -> list[dict]:
            return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")

        return {"a": self.a, "b": self.b, "pairing": self.pairing, "metrics": records(self.metrics),
                "common_n": {**self.common_n,
                             "metrics": [] if self.common is None else records(self.common)},
                "pair_clustering": self.pair_clustering,
                "clusters": records(self.clusters), "samples": records(self.samples),
                "items_paired": self.items_paired,
                "runs_made": self.made, "map_points": 0 if self.points is None else len(self.points)}


def _side_info(store: DuckStore, side: Side, run_id: str, letter: str) -> dict:
    run = store.run_summary(run_id)
    from synth.workflows.pipeline import version_name

    version = (version_name(run["prompt_name"], run["version"], run["label"])
               if pd.notna(run["version"]) else None)
    model = run["model"] if isinstance(run["model"], str) and run["model"] else None  # None: not recorded
    return {"ref": side.ref, "kind": side.kind, "run_id": run_id, "run_name": run["name"], "model": model,
            "n_items": int(run["n_items"]), "prompt_id": run["prompt_id"] if pd.notna(run["prompt_id"]) else None,
            "version": version, "label": f"{letter}: {version or run['name']}"}


def cluster_share_differences(items: pd.DataFrame, labels: dict[str, int], names: dict[int, str],
                              side: pd.Series) -> pd.DataFrame:
    """Each cluster's share of side A's items and of side B's, and B minus A, largest change first."""
    frame = pd.DataFrame({"cluster": items["item_id"].map(labels), "side": side.values})
    frame = frame.dropna(subset=["cluster"])
    shares = (frame.groupby(["cluster", "side"]).size() / frame.groupby("side").size()).unstack(fill_value=0.0)
    for letter in ("A", "B"):
        if letter not in shares:
            shares[letter] = 0.0
    out = pd.DataFrame({"cluster": shares.index.astype(int), "share_a": shares["A"].values,
                        "share_b": shares["B"].values})
    out["cluster_name"] = out["cluster"].map(names)
    out["difference"] = out["share_b"] - out["share_a"]
    out = out.reindex(out["difference"].abs().sort_values(ascending=False).index)
    return out[["cluster", "cluster_name", "share_a", "share_b", "difference"]].reset_index(drop=True)


def shared_variables(variables_a: list[dict], variables_b: list[dict]) -> list[str]:
    """The variable names both runs use (sorted): what their items can be paired by."""
    names_a = {k for v in variables_a for k in v}
    names_b = {k for v in variables_b for k in v}
    return sorted(names_a & names_b)


def sample_pairs(items_a: pd.DataFrame, items_b: pd.DataFrame, limit: int | None = SAMPLE_PAIRS) -> pd.DataFrame:
    """The items of the two runs side by side, each item of A beside an item of B with the same
    values of the variables both runs use (one B item per A item, in their order); by position
    when the runs share no variable.

    Columns: idx (A's position, else B's), variables (A's, else B's), text_a, text_b (None where
    a side has no partner), idx_b, variables_b, shared (the values the pair has in common, {} by
    position). Matched pairs first, then A's unmatched items, then B's."""
    a, b = _side_rows(items_a), _side_rows(items_b)
    names = shared_variables([r["variables"] for r in a], [r["variables"] for r in b])

    def key(row: dict) -> tuple:
        return tuple(str(row["variables"].get(k)) for k in names) if names else (row["idx"],)

    waiting: dict[tuple, list[dict]] = {}  # values (or position) -> B's items not yet paired, in order
    for row in b:
        waiting.setdefault(key(row), []).append(row)
    matched, alone = [], []
    for row in a:
        partners = waiting.get(key(row))
        matched.append((row, partners.pop(0))) if partners else alone.append((row, None))
    left_b = sorted((row for group in waiting.values() for row in group), key=lambda row: row["idx"])
    rows = [_pair_row(x, y, names) for x, y in matched + alone] + [_pair_row(None, r, names) for r in left_b]
    columns = ["idx", "variables", "text_a", "text_b", "idx_b", "variables_b", "shared"]
    # object columns, so that a missing text stays None rather than NaN
    pairs = pd.DataFrame(rows, columns=columns, dtype=object).astype({"idx": int, "idx_b": "Int64"})
    return pairs if limit is None else pairs.head(limit)


def _side_rows(items: pd.DataFrame) -> list[dict]:
    ordered = items.sort_values("idx")
    return [{"idx": int(i), "variables": from_json(v, {}) if not isinstance(v, dict) else v, "text": t}
            for i, v, t in zip(ordered["idx"], ordered["variables"], ordered["text"])]


def _pair_row(a: dict | None, b: dict | None, names: list[str]) -> dict:
    first = a or b
    shared = {k: first["variables"][k] for k in names if k in first["variables"]} if a and b else {}
    return {"idx": first["idx"], "variables": first["variables"], "text_a": a["text"] if a else None,
            "text_b": b["text"] if b else None, "idx_b": b["idx"] if b else None,
            "variables_b": b["variables"] if b else {}, "shared": shared}


def pairing_summary(items_a: pd.DataFrame, items_b: pd.DataFrame, pairs: pd.DataFrame | None = None) -> dict:
    """How the items side by side are paired: by (the shared variable names; [] when by position),
    matched (pairs with an item on both sides), n_a and n_b. ``pairs``: ``sample_pairs`` of the
    same items without a limit, if already made."""
    pairs = sample_pairs(items_a, items_b, limit=None) if pairs is None else pairs
    names = shared_variables([r["variables"] for r in _side_rows(items_a)],
                             [r["variables"] for r in _side_rows(items_b)])
    matched = int((pairs["text_a"].notna() & pairs["text_b"].notna()).sum())
    return {"by": names, "matched": matched, "n_a": len(items_a), "n_b": len(items_b)}


@in_session
def compare_runs(store: DuckStore, run_a: str, run_b: str, side_a: Side | None = None, side_b: Side | None = None,
                 with_map: bool = True, background: bool = True) -> Comparison:
    """Every metric of run B against run A (delta, better or worse), the size-dependent ones also at
    a common size with intervals (which alone decide their better or worse), both on one map, the
    cluster share differences and the items side by side."""
    if run_a == run_b:
        raise SynthError("A and B are the same run. Choose two different runs or versions.")
    side_a = side_a or Side(run_a, "run", run_id=run_a)
    side_b = side_b or Side(run_b, "run", run_id=run_b)
    info_a, info_b = _side_info(store, side_a, run_a, "A"), _side_info(store, side_b, run_b, "B")
    metrics = compare(compute_run_metrics(store, run_a), compute_run_metrics(store, run_b))
    metrics = metrics.rename(columns={"before": "a", "after": "b"})
    items = store.items([run_a, run_b])
    side = items["run_id"].map({run_a: "A", run_b: "B"})
    clustering = current_clustering(store)
    samples_by_run = run_samples(store, [run_a, run_b], clustering)
    common, common_table = compare_at_common_size(samples_by_run[run_a], samples_by_run[run_b])
    pair = current_clustering(store, items=items)
    metrics, common_table = with_pair_entropy(store, run_a, run_b, pair, metrics, common_table)
    metrics = judge_by_common_size(metrics, common_table)
    common_n = {"m": common.m, "min_items": common.minimum,
                "too_small": [letter for key, letter in (("a", "A"), ("b", "B")) if common.is_too_small(key)]}
    clusters = cluster_share_differences(items, clustering.labels, clustering.names, side)
    every_pair = sample_pairs(items[side == "A"], items[side == "B"], limit=None)
    items_paired = pairing_summary(items[side == "A"], items[side == "B"], every_pair)
    samples = every_pair.head(SAMPLE_PAIRS)
    points = None
    if with_map:
        from synth.workflows.pipeline import map_points

        all_points, _ = map_points(store, background=background)
        points = all_points[all_points["run_id"].isin([run_a, run_b])].copy()
        points["side"] = points["run_id"].map({run_a: info_a["label"], run_b: info_b["label"]})
        points["cluster_name"] = points["item_id"].map(clustering.labels).map(clustering.names)
    return Comparison(info_a, info_b, pairing(store, run_a, run_b), metrics, clusters, samples, points,
                      common=common_table, common_n=common_n, pair_clustering=pair_clustering_info(pair),
                      items_paired=items_paired)


def pair_clustering_info(pair: Clustering) -> dict:
    """What cluster_entropy_pair is measured over, with a label for tables."""
    label = (f"over one clustering of A and B together ({pair.method}, k={pair.k}, {len(pair.labels)} items), "
             "not the whole dataset's")
    return {"clustering_id": pair.clustering_id, "method": pair.method, "k": pair.k,
            "n_items": len(pair.labels), "params": pair.params, "label": label}


def with_pair_entropy(store: DuckStore, run_a: str, run_b: str, pair: Clustering, metrics: pd.DataFrame,
                      common: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The metric table and the common-size table, each with a cluster_entropy_pair row after its
    cluster_entropy row: each side's cluster entropy over ``pair``, the clustering of A and B alone
    (whole runs, and at the common size with intervals)."""
    samples = run_samples(store, [run_a, run_b], pair)
    a, b = (entropy_bits([c for c in samples[r].labels if c is not None]) for r in (run_a, run_b))
    row = {"metric": PAIR_METRIC, "a": a, "b": b, "delta": None if a is None or b is None else b - a, "change": ""}
    _, at_size = compare_at_common_size(samples[run_a], samples[run_b], metrics=("cluster_entropy",))
    return (_insert_after(metrics, "cluster_entropy", pd.DataFrame([row])),
            _insert_after(common, "cluster_entropy", at_size.assign(metric=PAIR_METRIC)))


def _insert_after(frame: pd.DataFrame, metric: str, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` placed after the row of ``metric`` (at the end if there is none)."""
    at = frame.index[frame["metric"] == metric]
    cut = (frame.index.get_loc(at[0]) + 1) if len(at) else len(frame)
    return pd.concat([frame.iloc[:cut], rows, frame.iloc[cut:]], ignore_index=True)


def judge_by_common_size(metrics: pd.DataFrame, common: pd.DataFrame) -> pd.DataFrame:
    """The whole-run metric table with the change of each size-dependent metric taken from the
    common-size verdict (better, worse, no clear difference, too small to compare), and no change
    for the size-dependent ones not measured at a common size."""
    by_metric = dict(zip(common["metric"], common["change"]))
    change = [by_metric.get(m, "" if m in UNJUDGED_METRICS else c)
              for m, c in zip(metrics["metric"], metrics["change"])]
    return metrics.assign(change=change)



def compare_refs(store: DuckStore, a: str, b: str, n: int | None = None, seed: int | None = None,
                 fresh: bool = False, api_base: str | None = None, with_map: bool = True,
                 background: bool = True, on_item: Callable[[Item, int, int], None] | None = None) -> Comparison:
    """Compare two runs or prompt versions (running the versions on shared samples if needed)."""
    side_a, side_b = resolve_side(store, a), resolve_side(store, b)
    run_a, run_b, made = prepare_runs(store, side_a, side_b, n, seed, fresh, api_base, on_item)
    result = compare_runs(store, run_a, run_b, side_a, side_b, with_map, background)
    result.made = made
    return result


@dataclass(frozen=True)
class DefaultPair:
    """What the comparison page opens on: two run ids (A the older) and a sentence saying why."""

    a: str
    b: str
    reason: str


def default_pair(store: DuckStore) -> DefaultPair | None:
    """The pair a comparison opens on: the newest controlled pair of runs (the same n, seed and
    variable values per item; newest by its newer run), else the newest runs of the two newest
    versions of one prompt (the prompt whose pair is newest), else the two newest runs. A is the
    older run. None when fewer than two runs have items."""
    runs = store.runs()
    runs = runs[runs["n_items"] > 0].reset_index(drop=True)  # oldest first: a larger position is newer
    if len(runs) < 2:
        return None
    ids, names = list(runs["run_id"]), dict(zip(runs["run_id"], runs["name"]))
    pair = _newest_controlled_pair(store, runs)
    if pair:
        a, b = pair
        return DefaultPair(a, b, f"Opened on the newest controlled pair: {names[a]} and {names[b]}, drawn with "
                                 "the same n, seed and variable values, so they differ only by their settings.")
    versions = _two_newest_versions(runs)
    if versions:
        (a, title_a), (b, title_b), prompt = versions
        return DefaultPair(a, b, f"Opened on the two newest versions of the prompt {prompt}, by their newest "
                                 f"runs: {title_a} ({names[a]}) and {title_b} ({names[b]}).")
    a, b = ids[-2], ids[-1]
    return DefaultPair(a, b, f"Opened on the two newest runs: {names[a]} and {names[b]}.")


def _newest_controlled_pair(store: DuckStore, runs: pd.DataFrame) -> tuple[str, str] | None:
    ids = list(runs["run_id"])
    # n and seed first (one small query a run): only runs that agree on both need their samples read
    keys = {}
    for run_id, n_items in zip(ids, runs["n_items"]):
        run = store.run_settings(run_id)
        params, config = run["params"], run["config"]
        keys[run_id] = (int(config.get("n") or params.get("n") or n_items), params.get("seed", config.get("seed")))
    shapes: dict[str, dict] = {}

    def shape(run_id: str) -> dict:
        if run_id not in shapes:
            shapes[run_id] = _run_shape(store, run_id)
        return shapes[run_id]

    for j in range(len(ids) - 1, 0, -1):
        for i in range(j - 1, -1, -1):
            a, b = ids[i], ids[j]
            if keys[a][1] is None or keys[a] != keys[b]:
                continue
            if _pairing(shape(a), shape(b))["paired"]:
                return a, b
    return None


def _two_newest_versions(runs: pd.DataFrame) -> tuple[tuple[str, str], tuple[str, str], str] | None:
    """The newest run of each of the two newest versions (that have runs) of the prompt whose two
    runs are newest: ((run A, version title), (run B, version title), prompt name)."""
    from synth.workflows.pipeline import version_name

    best = None
    versioned = runs[runs["prompt_version"].notna() & runs["prompt_name"].notna()]
    for prompt, group in versioned.groupby("prompt_name", sort=False):
        newest_runs = group.groupby("prompt_version").tail(1).sort_values("prompt_version").tail(2)
        if len(newest_runs) < 2:
            continue
        if best is None or newest_runs.index.max() > best[0]:
            best = (newest_runs.index.max(), prompt, newest_runs)
    if best is None:
        return None
    _, prompt, rows = best
    sides = [(r.run_id, version_name(prompt, int(r.prompt_version),
                                     r.version_label if isinstance(r.version_label, str) else None))
             for r in rows.itertuples()]
    return sides[0], sides[1], prompt
