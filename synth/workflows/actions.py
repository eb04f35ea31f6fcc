"""What a selection on the map (or a gap in it) leads to: a new run set up from it.

Reads: the dataset (items with clusters and roles) and a selection. Writes: nothing; returns a
:class:`~synth.generate.config.RunConfig` for the usual pipeline.
"""

from __future__ import annotations

import pandas as pd

from synth.analysis.clustering import NOISE, ctfidf_keywords
from synth.generate.config import RunConfig
from synth.generate.techniques.sampling import Sampling
from synth.kernel.errors import SynthError

MAX_EXAMPLES = 8
LIKE_THIS_TEMPLATE = ("Here are examples of the kind of text wanted:\n{examples}\n\n"
                      "Write one new text of the same kind, about a different specific subject. "
                      "Reply with the text only.")
GAP_TEMPLATE = ("Write one new text about {topic}.\n\nExamples of this kind of text:\n{examples}\n\n"
                "Write something different from each example. Reply with the text only.")


def like_this(texts: list[str], n: int = 10, **settings) -> RunConfig:
    """A sampling run whose few-shot examples are the selected texts ("generate more like this")."""
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise SynthError("Select some items on the map first: they become the examples of the new run.")
    return RunConfig(technique=Sampling.name, template=LIKE_THIS_TEMPLATE, n=n, examples=texts[:50],
                     k_examples=min(len(texts), 3), prompt_name="more like this",
                     run_name=settings.pop("run_name", None) or f"more like {len(texts)} selected items",
                     **settings)


def gap_table(items: pd.DataFrame) -> pd.DataFrame:
    """Clusters ranked by how under-covered they are.

    With reference data: reference share minus synthetic share (the long tail the synthetic set
    misses). Without: the clusters with the smallest synthetic share come first."""
    real = items[items["run_role"] == "reference"]
    synthetic = items[items["run_role"] != "reference"]
    rows = []
    for (cluster, name), group in items.groupby(["cluster", "cluster_name"]):
        if cluster == NOISE:
            continue
        row = {"cluster": int(cluster), "cluster_name": name,
               "synthetic_share": float((synthetic["cluster"] == cluster).mean()) if len(synthetic) else 0.0}
        if len(real):  # only a measured gap: no reference column of blanks, no negative "gaps"
            row["reference_share"] = float((real["cluster"] == cluster).mean())
            row["gap"] = row["reference_share"] - row["synthetic_share"]
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=["cluster", "cluster_name", "synthetic_share"])
    table = pd.DataFrame(rows)
    order = table.sort_values("gap", ascending=False) if len(real) else table.sort_values("synthetic_share")
    return order.reset_index(drop=True)


def fill_gap(items: pd.DataFrame, cluster: int | None = None, selected_ids: list[str] | None = None,
             n: int = 10, **settings) -> RunConfig:
    """A run aimed at a sparse cluster or a selected region: its distinctive words are the topic
    and its items (real ones first) the examples, with the instruction to write something different."""
    if selected_ids:
        region = items[items["item_id"].isin(selected_ids)]
        where = f"{len(region)} selected items"
    else:
        if cluster is None:
            table = gap_table(items)
            if table.empty:
                raise SynthError("There are no clusters yet to find a gap in.")
            cluster = int(table["cluster"].iloc[0])
        region = items[items["cluster"] == cluster]
        where = f"cluster {region['cluster_name'].iloc[0] if len(region) else cluster}"
    if region.empty:
        raise SynthError("The chosen region holds no items. Select items on the map or choose a cluster.")
    keywords = ctfidf_keywords(items["text"].tolist(), items["item_id"].isin(region["item_id"]).astype(int).tolist(),
                               top=5).get(1, [])
    topic = ", ".join(keywords) or "the same subject as the examples"
    ordered = pd.concat([region[region["run_role"] == "reference"], region[region["run_role"] != "reference"]])
    examples = ordered["text"].head(MAX_EXAMPLES * 4).tolist()
    return RunConfig(technique=Sampling.name, template=GAP_TEMPLATE, variables={"topic": [topic]}, n=n,
                     examples=examples, k_examples=min(3, len(examples)), prompt_name="fill a gap",
                     run_name=settings.pop("run_name", None) or f"fill the gap: {where}", **settings)
