"""Type checks of settings given as data (a recipe file, a saved run configuration).

Every rule broken is listed in one SynthError, each as "`field`: what is wrong (got X); expected Y".
The models live beside what they check: the run configuration's in :mod:`synth.generate.config`,
the built-in recipes' in :mod:`synth.workflows.recipes`. Reads and writes nothing.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    WrapValidator,
    create_model,
)
from pydantic_core import PydanticCustomError

from synth.kernel.errors import SynthError

# Strict: "ten" is not a number, 1.5 is not a whole number, [1] is not text; unknown keys are refused.
# A whole number is accepted where a number is expected.
STRICT = ConfigDict(strict=True, extra="forbid", validate_default=True)

_WHOLE = ("not a whole number", "a whole number, e.g. 5")
_NUMBER = ("not a number", "a number, e.g. 0.7")
_TEXT = ("not text", "text (put it in quotes if YAML reads it as something else)")
_FLAG = ("not true or false", "true or false")
_MAPPING = ("not a mapping", "a mapping of names to values, e.g. {name: value}")
# What each pydantic error type means to someone editing a YAML file: (what is wrong, expected).
KINDS: dict[str, tuple[str, str]] = {
    "int_type": _WHOLE, "int_parsing": _WHOLE, "int_from_float": _WHOLE,
    "float_type": _NUMBER, "float_parsing": _NUMBER,
    "string_type": _TEXT, "bool_type": _FLAG, "bool_parsing": _FLAG,
    "list_type": ("not a list", "a list, e.g. [a, b] (one value is a list of one: [a])"),
    "dict_type": _MAPPING, "model_type": _MAPPING, "model_attributes_type": _MAPPING,
    "missing": ("missing", "a value"),
}


class StrictModel(BaseModel):
    """A hand-written model with the strict rules above (built-in recipe params, say)."""

    model_config = STRICT


def strict_model(name: str, types: dict[str, Any]) -> type[BaseModel]:
    """A strict model of these fields, none required: only the keys given are set (see
    ``model_fields_set``), so the defaults stay with the class the values are for."""
    return create_model(name, __config__=ConfigDict(strict=True, extra="forbid"),
                        **{field: (tp, None) for field, tp in types.items()})


def _scalar_text(value: Any) -> Any:
    # A number or a flag among text values is its text ("year: [2023, 2024]"); a list or a
    # mapping stays as it is and is refused as "not text".
    return str(value) if isinstance(value, (int, float)) else value


# A value that is text, a number or a flag, kept as text.
Text = Annotated[str, BeforeValidator(_scalar_text)]


def either(tp: Any, expected: str) -> Any:
    """``tp`` (a union) with one error when no member fits, saying what was ``expected``."""
    def check(value: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError("either", "wrong type", {"expected": expected}) from None
    return Annotated[tp, WrapValidator(check)]


def choice(names: Callable[[], Iterable[str]], kind: str) -> Any:
    """Text that must be one of ``names()``, read when checked (a registry can grow)."""
    def check(value: str) -> str:
        known = list(names())
        if value not in known:
            raise PydanticCustomError("choice", "unknown {kind}",
                                      {"kind": kind, "expected": "one of " + ", ".join(map(repr, known))})
        return value
    return Annotated[str, AfterValidator(check)]


def check(model: type[BaseModel], data: Any, what: str) -> BaseModel:
    """``data`` checked against ``model``; a SynthError lists every rule broken."""
    checked, lines = problems(model, data)
    raise_problems(what, lines)
    return checked  # type: ignore[return-value]


def problems(model: type[BaseModel], data: Any, prefix: tuple = ()) -> tuple[BaseModel | None, list[str]]:
    """(the checked model, or None, and one line per rule broken), field paths under ``prefix``."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, [problem(model, err, prefix) for err in exc.errors()]


def raise_problems(what: str, lines: list[str]) -> None:
    if lines:
        many = len(lines) > 1
        raise SynthError(f"The {what} has {len(lines)} problem{'s' if many else ''}; fix "
                         f"{'them' if many else 'it'} and try again:\n" + "\n".join(f"- {line}" for line in lines))


def problem(model: type[BaseModel], err: dict, prefix: tuple = ()) -> str:
    """One broken rule: "`field`: what is wrong (got X); expected Y"."""
    kind, ctx, loc = err["type"], err.get("ctx") or {}, tuple(err["loc"])
    what, expected = KINDS.get(kind, (err["msg"][:1].lower() + err["msg"][1:], ""))
    if kind == "extra_forbidden":
        what, expected = "unknown setting", _known(model, loc)
    elif kind == "literal_error":
        what, expected = "not one of the choices", ctx.get("expected", "")
    elif kind in ("either", "choice"):
        what, expected = err["msg"], ctx["expected"]
    if expected in (_WHOLE[1], _NUMBER[1]) and _numeric_text(err.get("input")):
        expected += ", without quotes (YAML reads 1e-3 as text: write 0.001)"
    got = "" if kind == "missing" else f" (got {_shown(err.get('input'))})"
    return f"`{_path((*prefix, *loc))}`: {what}{got}" + (f"; expected {expected}" if expected else "")


def _numeric_text(value: Any) -> bool:
    try:
        return isinstance(value, str) and bool(float(value) == float(value))
    except ValueError:
        return False


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out or "(the whole file)"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _known(model: type[BaseModel], loc: tuple) -> str:
    """The settings a mapping may have, naming the closest one to a misspelt key."""
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        inner = _model_in(field.annotation) if field else None
        if inner is None:
            return "a known setting"
        model = inner
    names = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    return f"a known setting: did you mean `{close[0]}`?" if close else "one of " + ", ".join(names)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``Model``, ``list[Model]`` or ``Model | None``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
