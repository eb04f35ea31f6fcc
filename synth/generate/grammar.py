"""Symbolic generation: a slot grammar with weighted choices, expanded without any model.

Reads: a grammar spec (a dict, or its YAML or JSON text). Writes: nothing; returns the texts
with the choice made for each rule, for the caller to store as provenance.

Spec format::

    start: "<greeting>, I need help with my <product>."
    rules:
      greeting: ["Hi", {text: "Hello there", weight: 3}]
      product: ["router", "<adjective> phone"]
      adjective: ["new", "old"]

``<name>`` refers to a rule; a literal ``<`` or ``>`` is written ``<<`` or ``>>``. ``start`` may
also be a list of alternatives like a rule. A grammar whose longest possible expansion is over the
``max_item_chars`` setting (SYNTH_MAX_ITEM_CHARS) is refused before anything is expanded.
"""

from __future__ import annotations

import difflib
import math
import random
import re
from bisect import bisect
from dataclasses import dataclass
from typing import Any

import yaml

from synth.kernel import settings
from synth.kernel.errors import SynthError

MAX_ITEMS = 1_000_000
MAX_DEPTH = 50
MAX_COUNT = 10**12
# count() lists each rule's texts up to this many; beyond it, it counts ways to expand.
ENUMERATE_LIMIT = 200_000
START = "start"
SPEC_KEYS = (START, "rules")
_UNSET = object()

_TOKEN = re.compile(r"<<|>>|<([^<>]*)>|<|>")
_BLANKS = re.compile(r"[ \t]+")
_AROUND_NEWLINE = re.compile(r" ?\n ?")
_BRACED = re.compile(r"\{([A-Za-z_]\w*)\}")

Part = str | int  # a literal, or the index of a rule
Alternatives = list[tuple[str, float]]


@dataclass(frozen=True)
class Expansion:
    """One expanded text and, per rule used, the alternative chosen the first time it was used.

    ``choices`` also holds the chosen ``start`` alternative when ``start`` is a list.
    """

    text: str
    choices: dict[str, str]


def normalise(text: str) -> str:
    """``text`` with runs of spaces and tabs collapsed to one space, no spaces around line
    breaks, and no whitespace at either end. Line breaks are kept."""
    if "  " in text or "\t" in text or "\n" in text:
        text = _AROUND_NEWLINE.sub("\n", _BLANKS.sub(" ", text))
    return text.strip()


def parse_template(template: str, where: str) -> list[str | tuple[str]]:
    """A template as literal strings and ``(rule_name,)`` references, escapes resolved.
    ``where`` names the template in error messages."""
    parts: list[str | tuple[str]] = []
    literal: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(template):
        literal.append(template[pos:match.start()])
        pos = match.end()
        token = match.group(0)
        if token in ("<<", ">>"):
            literal.append(token[0])
            continue
        name = match.group(1)
        if name is None:
            raise SynthError(f"{where} has a lone {token!r} in {template!r}. Write a rule reference "
                             f"as <name>, and a literal {token} as {token * 2}.")
        if not name.isidentifier():
            raise SynthError(f"{where} refers to <{name}>, which is not a rule name. Rule names use "
                             "letters, digits and underscores, like <product>; write a literal < as "
                             "<< and > as >>.")
        if any(literal):
            parts.append("".join(literal))
        literal = []
        parts.append((name,))
    literal.append(template[pos:])
    if any(literal):
        parts.append("".join(literal))
    return parts


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _longest(alternatives: list[list[Part]], lengths: list[int | None]) -> int | None:
    """The longest of the alternatives, given each rule's longest (None: cannot finish)."""
    best = None
    for parts in alternatives:
        total: int | None = 0
        for part in parts:
            if part.__class__ is str:
                total += len(part)
            elif lengths[part] is None:
                total = None
                break
            else:
                total += lengths[part]
        if total is not None and (best is None or total > best):
            best = total
    return best


def _alternatives(values: Any, owner: str) -> Alternatives:
    """A rule's (or start's) alternatives as (text, weight) pairs; ``owner`` names it in errors."""
    if not isinstance(values, list):
        raise SynthError(f"{owner} must be a list of alternatives, got {type(values).__name__}. "
                         'Write it as a list, e.g. ["new", {text: "old", weight: 2}].')
    if not values:
        raise SynthError(f"{owner} has an empty list of alternatives. Give it at least one, "
                         'e.g. ["new", "old"], or remove it.')
    out: Alternatives = []
    for number, alt in enumerate(values, start=1):
        where = f"{owner}, alternative {number}"
        if isinstance(alt, str):
            out.append((alt, 1.0))
            continue
        if not isinstance(alt, dict):
            raise SynthError(f"{where} is {alt!r} ({type(alt).__name__}), neither a string nor a "
                             '{text, weight} mapping. Quote it as a string, e.g. "42", or write '
                             '{text: "...", weight: 2}.')
        unknown = sorted(str(k) for k in alt if k not in ("text", "weight"))
        if unknown or not isinstance(alt.get("text"), str):
            raise SynthError(f"{where} is a mapping {alt!r} but an alternative mapping must have a "
                             'string "text" and an optional "weight" and nothing else'
                             + (f" (unknown: {', '.join(unknown)})" if unknown else "")
                             + '. Write it as {text: "...", weight: 2}.')
        weight = alt.get("weight", 1)
        if not _is_number(weight) or not 0 < weight < math.inf:
            raise SynthError(f"{where} has weight {weight!r}, which is not a positive number. "
                             "Give a number greater than 0, like 3 or 0.5 (not quoted), or drop "
                             "the alternative.")
        out.append((alt["text"], float(weight)))
    return out


class Grammar:
    """A validated slot grammar, compiled once for fast seeded expansion."""

    def __init__(self, start: Alternatives, rules: dict[str, Alternatives], start_is_list: bool):
        """Use :meth:`from_dict` or :meth:`from_text`, which check the spec's shape first."""
        self.start = start
        self.rules = rules
        self.start_is_list = start_is_list
        # Index 0 is start; rule i + 1 is the i-th rule in definition order.
        self._names = [START, *rules]
        index = {name: i for i, name in enumerate(self._names)}
        self._parts: list[list[list[Part]]] = []
        for i, name in enumerate(self._names):
            alts = start if i == 0 else rules[name]
            compiled = []
            for number, (text, _) in enumerate(alts, start=1):
                where = self._where(name, number)
                compiled.append([self._resolve(part, index, where)
                                 for part in parse_template(text, where)])
            self._parts.append(compiled)
        self._refs = [{p for alt in alts for p in alt if isinstance(p, int)} for alts in self._parts]
        self._check_braces()
        self._reachable = self._reach()
        self._order = self._check_graph()
        unused = [name for i, name in enumerate(self._names) if i not in self._reachable]
        # Problems that do not stop expansion, for the CLI and the page to show.
        self.warnings: list[str] = [] if not unused else [(
            f"Never used, so without effect: rule {', '.join(repr(n) for n in unused)} (neither start "
            f"nor a rule it leads to refers to it). Refer to a rule as <{unused[0]}>, or remove it.")]
        self._compiled = [self._compile(i) for i in range(len(self._names))]
        self._count: int | None | object = _UNSET

    @classmethod
    def from_dict(cls, spec: dict) -> Grammar:
        """A grammar from a spec dict, fully validated; raises SynthError naming the problem."""
        if not isinstance(spec, dict):
            raise SynthError(f"A grammar must be a mapping with keys start and rules, got "
                             f"{type(spec).__name__}. Write e.g. start: \"Hi <name>\" and "
                             "rules: {name: [Ann, Bo]}.")
        unknown = [str(k) for k in spec if k not in SPEC_KEYS]
        if unknown:
            raise SynthError(f"The grammar has unknown key(s) {', '.join(unknown)}. Use only start "
                             "(the template) and rules (the mapping of rule names to alternatives).")
        if START not in spec:
            raise SynthError("The grammar has no start. Add start: a template such as "
                             "\"<greeting>, <name>!\" (or a list of them) that expansion begins from.")
        rules_spec = spec.get("rules", {})
        if not isinstance(rules_spec, dict):
            raise SynthError(f"rules must be a mapping of rule names to lists of alternatives, got "
                             f"{type(rules_spec).__name__}. Write e.g. rules: {{greeting: [Hi, Hello]}}.")
        rules: dict[str, Alternatives] = {}
        for name, values in rules_spec.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise SynthError(f"Rule name {name!r} is not an identifier. Use letters, digits and "
                                 "underscores, not starting with a digit, like product_name.")
            if name == START:
                raise SynthError("A rule is named 'start', which is the name of the top-level "
                                 "template. Rename the rule, e.g. to opening.")
            rules[name] = _alternatives(values, f"Rule '{name}'")
        start = spec[START]
        if isinstance(start, str):
            return cls([(start, 1.0)], rules, start_is_list=False)
        if not isinstance(start, list):
            raise SynthError(f"start must be a template string or a list of alternatives, got "
                             f"{type(start).__name__}. Write e.g. start: \"Hi <name>\".")
        return cls(_alternatives(start, "start"), rules, start_is_list=True)

    @classmethod
    def from_text(cls, text: str) -> Grammar:
        """A grammar from YAML or JSON text; raises SynthError with the line of a syntax error."""
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            place = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise SynthError(f"The grammar is not valid YAML or JSON{place}: {problem}. Fix that "
                             "line; quote texts that contain a colon, braces or a leading "
                             "<, e.g. \"<greeting>: hi\".") from None
        if spec is None:
            raise SynthError("The grammar text is empty. Write a mapping with start and rules, "
                             "e.g. start: \"Hi <name>\" and rules: {name: [Ann, Bo]}.")
        return cls.from_dict(spec)

    def expand(self, n: int, seed: int = 0, unique: bool = False,
               max_attempts: int | None = None) -> list[Expansion]:
        """``n`` expansions, the same for the same seed. With ``unique``, only distinct texts:
        as many as ``max_attempts`` tries (default 20 * n) find, which may be fewer than ``n``."""
        if not _is_int(n) or not 1 <= n <= MAX_ITEMS:
            raise SynthError(f"The number of texts must be a whole number between 1 and "
                             f"{MAX_ITEMS:,}, got {n!r}.")
        self.check_size(settings.get("max_item_chars"))
        rng = random.Random(seed)
        if not unique:
            return [self._expand_one(rng) for _ in range(n)]
        if max_attempts is None:
            max_attempts = 20 * n
        if not _is_int(max_attempts) or max_attempts < 1:
            raise SynthError(f"max_attempts must be a whole number of at least 1, got "
                             f"{max_attempts!r}. Leave it unset for 20 tries per text.")
        # Stop early once every text is found, when listing them costs less than the tries.
        capacity = self.count() if self._derivations() <= max_attempts else None
        seen: set[str] = set()
        out: list[Expansion] = []
        for _ in range(max_attempts):
            item = self._expand_one(rng)
            if item.text in seen:
                continue
            seen.add(item.text)
            out.append(item)
            if len(out) == n or len(out) == capacity:
                break
        return out

    def largest_length(self) -> int | None:
        """The most characters one expansion can have (an upper bound: blanks are collapsed after),
        recursive rules counted to the depth limit; None if a recursive grammar has no expansion
        that finishes within it."""
        return self._bounds()[0]

    def check_size(self, limit: int) -> None:
        """Raise SynthError naming the rules that blow up if one expansion can exceed ``limit``
        characters (the ``max_item_chars`` setting when expanding)."""
        start, lengths = self._bounds()
        if start is None or start <= limit:
            return
        over = sorted((lengths[i], self._names[i]) for i in self._reachable
                      if i and lengths[i] is not None and lengths[i] > limit)
        listed = ", ".join(f"'{name}' (up to {length:,})" for length, name in over[:3])
        more = f" and {len(over) - 3} more" if len(over) > 3 else ""
        where = (f"Rules over the limit, the one where it blows up first: {listed}{more}. " if over
                 else "start's own text and the rules it uses add up to that. ")
        depth = (f"Recursive rules are counted to the depth limit of {MAX_DEPTH} levels. "
                 if self._order is None else "")
        raise SynthError(f"The grammar can expand to {start:,} characters in one item, over the limit of "
                         f"{limit:,} (setting SYNTH_MAX_ITEM_CHARS). {where}{depth}Nothing was expanded. "
                         "Make those rules shorter or refer to fewer copies of the rules below them, or "
                         "raise SYNTH_MAX_ITEM_CHARS.")

    def count(self) -> int | None:
        """How many distinct texts the grammar can produce, or None if that is unbounded
        (recursive grammars) or over 10**12. Exact while no rule has more than ENUMERATE_LIMIT
        texts; beyond that, the number of ways to expand, which counts twice a text that two
        ways both produce."""
        if self._count is _UNSET:
            self._count = self._compute_count()
        return self._count

    # Building

    def _where(self, name: str, number: int) -> str:
        if name != START:
            return f"Rule '{name}', alternative {number}"
        return f"start, alternative {number}" if self.start_is_list else "start"

    def _resolve(self, part: str | tuple[str], index: dict[str, int], where: str) -> Part:
        if isinstance(part, str):
            return part
        name = part[0]
        if name == START:
            raise SynthError(f"{where} refers to <start>, the top-level template, which rules "
                             "cannot use. Put the shared text in a rule and refer to that instead.")
        if name in index:
            return index[name]
        defined = list(self.rules)
        close = difflib.get_close_matches(name, defined, n=1)
        hint = f" Did you mean <{close[0]}>?" if close else ""
        raise SynthError(f"{where} refers to <{name}>, which is not a defined rule.{hint} Define "
                         f"{name} under rules (defined: {', '.join(defined) or 'none'}), or write a "
                         "literal < as <<.")

    def _check_braces(self) -> None:
        """Refuse ``{name}`` meant as a rule reference (it would come out literally): a rule's name
        in braces, or any ``{name}`` in a grammar that refers to no rule at all."""
        refers = any(self._refs)
        for i, name in enumerate(self._names):
            for number, (text, _) in enumerate(self.start if i == 0 else self.rules[name], start=1):
                for found in _BRACED.findall(text):
                    if found in self.rules or not refers:
                        define = "" if found in self.rules else f" (and define {found} under rules)"
                        raise SynthError(f"{self._where(name, number)} writes {{{found}}}, which would come "
                                         f"out as those literal characters: use <{found}> to refer to a "
                                         f"rule{define}.")

    def _reach(self) -> set[int]:
        """Start and the rules it leads to."""
        reachable, stack = {0}, [0]
        while stack:
            for ref in self._refs[stack.pop()]:
                if ref not in reachable:
                    reachable.add(ref)
                    stack.append(ref)
        return reachable

    def _check_graph(self) -> list[int] | None:
        """Rules reachable from start, children before parents, or None if they recurse.
        Raises SynthError if a reachable rule can never finish expanding."""
        reachable = self._reachable
        finishes: set[int] = set()
        changed = True
        while changed:
            changed = False
            for i in reachable - finishes:
                if any(all(p in finishes for p in alt if isinstance(p, int)) for alt in self._parts[i]):
                    finishes.add(i)
                    changed = True
        stuck = sorted(reachable - finishes)
        if stuck:
            # Following refs among stuck rules must loop; name a rule on that loop.
            path, i = [], stuck[0]
            while i not in path:
                path.append(i)
                i = min(r for r in self._refs[i] if r not in finishes)
            loop = [self._names[j] for j in path[path.index(i):]]
            via = " -> ".join(f"<{name}>" for name in [*loop, loop[0]])
            raise SynthError(f"Rule '{loop[0]}' can never finish expanding: every one of its "
                             f"alternatives leads into a loop with no way out ({via}). Add an "
                             f"alternative to '{loop[0]}' that does not refer back, e.g. a plain word.")
        # Kahn's algorithm over the reachable rules: leftovers mean a cycle.
        waiting = {i: len(self._refs[i]) for i in reachable}
        users: dict[int, list[int]] = {i: [] for i in reachable}
        for i in reachable:
            for ref in self._refs[i]:
                users[ref].append(i)
        order = [i for i, left in waiting.items() if left == 0]
        for i in order:
            for user in users[i]:
                waiting[user] -= 1
                if waiting[user] == 0:
                    order.append(user)
        return order if len(order) == len(reachable) else None

    def _compile(self, i: int) -> tuple:
        """What expansion needs for rule ``i``: name, alternative texts, their parts, each
        alternative's text if it has no references (else None), cumulative weights."""
        alts = self.start if i == 0 else self.rules[self._names[i]]
        texts = [text for text, _ in alts]
        literals = [("".join(parts) if all(isinstance(p, str) for p in parts) else None)
                    for parts in self._parts[i]]
        cumulative, total = [], 0.0
        for _, weight in alts:
            total += weight
            cumulative.append(total)
        return self._names[i], texts, self._parts[i], literals, cumulative, total, len(alts) - 1

    # Expanding

    def _expand_one(self, rng: random.Random) -> Expansion:
        rand = rng.random
        _, texts, parts, _, cumulative, total, hi = self._compiled[0]
        k = bisect(cumulative, rand() * total, 0, hi) if hi else 0
        out: list[str] = []
        choices: dict[str, str] = {START: texts[k]} if self.start_is_list else {}
        self._render(parts[k], rand, out, choices, 0)
        return Expansion(text=normalise("".join(out)), choices=choices)

    def _render(self, parts: list[Part], rand, out: list[str], choices: dict[str, str],
                depth: int) -> None:
        """Append the expansion of one alternative's ``parts`` to ``out``."""
        # Choosing inline and appending literal alternatives directly saves a call per rule use.
        compiled = self._compiled
        for part in parts:
            if part.__class__ is str:
                out.append(part)
                continue
            name, texts, alternatives, literals, cumulative, total, hi = compiled[part]
            if depth >= MAX_DEPTH:
                raise SynthError(f"Expanding rule '{name}' went into recursion deeper than "
                                 f"{MAX_DEPTH} levels of rules. Give the alternatives that do not "
                                 "recurse more weight, or nest rules less deeply.")
            k = bisect(cumulative, rand() * total, 0, hi) if hi else 0
            if name not in choices:
                choices[name] = texts[k]
            literal = literals[k]
            if literal is None:
                self._render(alternatives[k], rand, out, choices, depth + 1)
            else:
                out.append(literal)

    # Measuring

    def _bounds(self) -> tuple[int | None, list[int | None]]:
        """The longest expansion of start, and of each rule used right from start (None: none can
        finish within the depth limit; unreachable rules None too)."""
        lengths: list[int | None] = [None] * len(self._names)
        if self._order is not None:
            for i in self._order:  # children first: one pass
                lengths[i] = _longest(self._parts[i], lengths)
            return lengths[0], lengths
        # Recursive: level by level up from the depth limit, where using a rule fails.
        for _ in range(MAX_DEPTH):
            lengths = [_longest(self._parts[i], lengths) if i in self._reachable else None
                       for i in range(len(self._names))]
        return _longest(self._parts[0], lengths), lengths

    # Counting

    def _derivations(self) -> int | float:
        """The number of ways to expand start (each a choice per rule use), inf if recursive."""
        if self._order is None:
            return math.inf
        ways: dict[int, int] = {}
        for i in self._order:
            ways[i] = sum(math.prod(ways[p] for p in alt if isinstance(p, int)) for alt in self._parts[i])
        return ways[0]

    def _compute_count(self) -> int | None:
        if self._order is None:
            return None
        texts: dict[int, set[str]] = {}
        for i in self._order:
            found: set[str] = set()
            for alt in self._parts[i]:
                prefixes = {""}
                for part in alt:
                    if isinstance(part, str):
                        prefixes = {p + part for p in prefixes}
                        continue
                    if len(prefixes) * len(texts[part]) > ENUMERATE_LIMIT:
                        return self._derivations_within_limit()
                    prefixes = {p + t for p in prefixes for t in texts[part]}
                found |= prefixes
                if len(found) > ENUMERATE_LIMIT:
                    return self._derivations_within_limit()
            texts[i] = found
        return len({normalise(text) for text in texts[0]})

    def _derivations_within_limit(self) -> int | None:
        ways = self._derivations()
        return int(ways) if ways <= MAX_COUNT else None
