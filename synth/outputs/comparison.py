"""A comparison as people read it: its metric tables with labels beside the metric ids and values
in their units (shares as percentages, "—" where there is none), and sentences saying whether
the two runs are a controlled pair and how their items are paired.

Reads: a :class:`~synth.workflows.compare.Comparison`. Writes: nothing. The pages and the CLI
show these as text.
"""

from __future__ import annotations

import pandas as pd

from synth.analysis.metrics import METRICS, format_metric, metric_label
from synth.kernel.text import is_missing
from synth.workflows.compare import PAIR_METRIC, Comparison


def values_text(values: dict) -> str:
    """Variable values as one line: ``product = kettle · tone = calm`` ("" for none)."""
    return " · ".join(f"{k} = {v}" for k, v in sorted(values.items()))


def items_caption(summary: dict) -> str:
    """A sentence saying how the items side by side were paired."""
    if not summary["by"]:
        return ("The runs share no variable, so items are paired by position: A's first item beside B's "
                "first, and so on.")
    names = ", ".join(summary["by"])
    return (f"Items are paired by the values of {names} (the variables both runs use): {summary['matched']} of "
            f"A's {summary['n_a']} items have a partner in B ({summary['n_b']} items) with the same values.")


def pairing_sentence(result: Comparison) -> str:
    """Whether the two runs are a controlled pair, in a sentence; when not, what differs and how
    to get one."""
    p, a, b = result.pairing, result.a, result.b
    if p["paired"]:
        return (f"Paired: the same n ({p['n']}), the same seed and the same variable values for every item, "
                "so the differences come from the prompt and its settings, not from the draw.")
    parts = []
    if not p["same_n"]:
        parts.append(f"A has {a['n_items']} items and B {b['n_items']}")
    if not p["same_seed"]:
        parts.append("they were not drawn with the same seed")
    if p["same_samples"] < p["n"]:
        parts.append(f"{p['same_samples']} of {p['n']} items have the same variable values at the same position")
    text = f"Not a controlled pair: {'; '.join(parts)}. Differences may come from the draw as well as the prompt."
    if a["version"] and b["version"] and a["version"] != b["version"] and a["prompt_id"] != b["prompt_id"]:
        return text + (f" To compare the prompts alone, choose the versions {a['version']} and {b['version']} "
                       f"instead of their runs: {b['version']} then runs on A's samples, seed and n.")
    return text + " To compare prompts alone, choose two prompt versions: the second runs on the first's samples."


# cluster_entropy_pair is not in the metrics registry: it is the comparison's own
PAIR_METRIC_LABEL = "Topic spread, A and B alone"


def _label(name: str) -> str:
    return PAIR_METRIC_LABEL if name == PAIR_METRIC else metric_label(name, with_id=False)


def _value(name: str, value, signed: bool = False) -> str:
    return format_metric("cluster_entropy" if name == PAIR_METRIC else name, value, signed=signed)


def metric_rows(result: Comparison) -> pd.DataFrame:
    """The metric table as people read it: measure (its label), metric (its id), A, B and B − A in
    the metric's unit (shares as percentages, "—" where there is no value), change."""
    m = result.metrics
    return pd.DataFrame({"measure": [_label(n) for n in m["metric"]], "metric": m["metric"].tolist(),
                         "A": [_value(n, v) for n, v in zip(m["metric"], m["a"])],
                         "B": [_value(n, v) for n, v in zip(m["metric"], m["b"])],
                         "B − A": [_value(n, v, signed=True) for n, v in zip(m["metric"], m["delta"])],
                         "change": m["change"].fillna("").tolist()})


def interval_label(name: str, mean, low, high) -> str:
    """A metric at the common size in its unit, the mean and its 95 % interval: ``41 % [39 % – 43 %]``,
    ``1.87 bits [1.66 – 1.98]`` (a unit written as a word once); "—" without a value."""
    if is_missing(mean):
        return "—"
    bounds = [_value(name, v) for v in (low, high)]
    unit = METRICS["cluster_entropy" if name == PAIR_METRIC else name].unit if (
        name == PAIR_METRIC or name in METRICS) else ""
    if unit in ("bits", "words", "ms"):
        bounds = [b.removesuffix(f" {unit}") for b in bounds]
    return f"{_value(name, mean)} [{bounds[0]} – {bounds[1]}]"


def common_rows(result: Comparison) -> pd.DataFrame:
    """The common-size table as people read it: measure, metric (id), A and B as mean [interval]
    in the metric's unit, change."""
    c = result.common if result.common is not None else pd.DataFrame(
        columns=["metric", "a", "a_low", "a_high", "b", "b_low", "b_high", "change"])
    return pd.DataFrame({"measure": [_label(n) for n in c["metric"]], "metric": c["metric"].tolist(),
                         "A": [interval_label(*v) for v in zip(c["metric"], c["a"], c["a_low"], c["a_high"])],
                         "B": [interval_label(*v) for v in zip(c["metric"], c["b"], c["b_low"], c["b_high"])],
                         "change": c["change"].fillna("").tolist()})
