"""Technique 2: back-translation, the instruction that would produce each given output."""

from __future__ import annotations

from typing import Any

from synth.generate.techniques.base import Planned, register_technique
from synth.generate.techniques.from_sources import FromSources


@register_technique
class BackTranslation(FromSources):
    name = "back_translation"
    title = "Back-translation"
    description = ("Start from outputs (pasted texts, a file, a folder or a git repository) and ask the "
                   "model for the instruction or question that would produce each one.")
    default_template = ("Here is a text:\n\n{text}\n\nWrite the instruction or question that this text "
                        "answers. Reply with the instruction only.")

    def item_fields(self, text: str, planned: Planned) -> dict[str, Any]:
        """Each item is an (instruction, response) pair: the model's text and its source."""
        return {"instruction": text, "response": planned.source_text}
