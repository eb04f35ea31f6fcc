"""Technique 3: transforming existing data, a rewrite prompt applied to every source row."""

from __future__ import annotations

from synth.generate.techniques.base import register_technique
from synth.generate.techniques.from_sources import FromSources


@register_technique
class Transform(FromSources):
    name = "transform"
    title = "Transform existing data"
    description = ("Apply a rewrite prompt to every row of a JSONL/CSV file or an earlier run: paraphrase, "
                   "restyle, translate, make harder. Every output keeps a link to its source row.")
    default_template = "Paraphrase this text, keeping its meaning:\n\n{text}"
    form = ("source", "source_template", "per_source")
