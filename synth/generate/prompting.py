"""Prompt text: the variables a template uses, rendering, and the chat messages of one item.

Reads and writes nothing: pure functions shared by the run configuration and the techniques.
"""

from __future__ import annotations

import string
from typing import Any

from synth.kernel.errors import SynthError


def template_fields(template: str) -> list[str]:
    """The variable names a template uses, in order of first use."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise SynthError(f"The template has unbalanced braces ({exc}). Write variables as {{name}} "
                         "and literal braces as {{{{ and }}}}.") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise SynthError(f"Template variable {{{name}}} is not a plain name. Use letters, digits "
                             "and underscores, like {topic}; write a literal brace as {{ or }}.")
        if spec or conversion:
            raise SynthError(f"Template variable {{{name}}} has a format spec; write it as {{{name}}}.")
        if name not in names:
            names.append(name)
    return names


def render(template: str, values: dict[str, str]) -> str:
    return template.format(**values)


def build_messages(system_prompt: str, user: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return messages + [{"role": "user", "content": user}]



def bullets(texts: list[str]) -> str:
    """Texts as a markdown-style bullet list, each folded to one line."""
    return "\n".join(f"- {' '.join(t.split())}" for t in texts)


def user_message(cfg, body: str) -> list[dict]:
    """The chat messages for one item of ``cfg`` (a RunConfig): system prompt, the body, output
    instructions if any."""
    spec = cfg.output_spec()
    if spec is not None:
        body = f"{body}\n\n{spec.instructions()}"
    return build_messages(cfg.system_prompt, body)


def render_template(template: str, values: dict[str, Any]) -> str:
    """``render`` with a message naming the placeholders this technique provides."""
    try:
        return render(template, values)
    except KeyError as exc:
        raise SynthError(f"The template uses {{{exc.args[0]}}}, which this technique does not provide. "
                         f"Available here: {', '.join('{' + k + '}' for k in sorted(values))}.") from None
