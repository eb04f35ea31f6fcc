"""Recipes: a run setup in a YAML or JSON file, to rerun or share.

A recipe file is either one technique run (the keys of :class:`~synth.generate.config.RunConfig`), or a
built-in multi-step recipe (``recipe: NAME`` and its ``params``) from the registry below. Either is
checked by type when loaded and again when run (the Generate page and the CLI both load through
here); one SynthError lists every rule broken, each naming its field.

Reads: recipe files. Writes: runs, through the same pipeline as the pages and the CLI.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from synth.generate import schema
from synth.generate.config import RunConfig, checked_types
from synth.generate.execute import execute
from synth.generate.judge import Criterion, Rubric, judge_items
from synth.generate.techniques.sampling import Sampling
from synth.generate.techniques.transform import Transform
from synth.kernel import settings
from synth.kernel.errors import SynthError
from synth.kernel.records import Item, PromptSpec, Run
from synth.kernel.registry import Registry
from synth.store import DuckStore
from synth.workflows.pipeline import RunResult, generate_run, save_and_measure

RECIPES_DIR = settings.DATA_DIR / "recipes"
# Settings a built-in recipe passes on to every run it makes.
SHARED_KEYS = ("model", "api_base", "temperature", "max_tokens", "top_p", "seed", "concurrency",
               "budget_usd", "regenerate")

OnItem = Callable[[Item, int, int], None] | None


def load_recipe(path: str | Path | None = None, text: str | None = None) -> dict[str, Any]:
    """A recipe as a dict, from a file (``.yaml``, ``.yml`` or ``.json``) or from text."""
    if text is None:
        path = Path(path)  # type: ignore[arg-type]
        if not path.is_file():
            raise SynthError(f"Recipe file not found: {path}. Shipped recipes are in {RECIPES_DIR}.")
        text = path.read_text()
    try:
        data = json.loads(text) if path is not None and Path(path).suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SynthError(f"The recipe is not valid YAML or JSON: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise SynthError("A recipe must be a mapping, e.g. 'technique: sampling' with its settings, or "
                         "'recipe: onboarding_qa' with 'params'.")
    check_recipe(data)
    return data


def check_recipe(data: dict[str, Any]) -> None:
    """Check the type of every setting of a recipe; one SynthError lists every rule broken."""
    if "recipe" in data:
        built_in(data)
    else:
        config_from_recipe(data)


def recipe_text(cfg: RunConfig) -> str:
    """The YAML recipe of one run configuration (what the Generate page saves)."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True)


def config_from_recipe(data: dict[str, Any]) -> RunConfig:
    """The run configuration of a one-technique recipe."""
    if "recipe" in data:
        raise SynthError(f"{data['recipe']!r} is a multi-step recipe: run it with python -m synth run FILE.")
    return RunConfig.from_dict(data, what="recipe")


def built_in(data: dict[str, Any]) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(the recipe, its shared settings, its params with defaults) of a built-in recipe, after
    checking the type of every value, params included."""
    envelope, lines = schema.problems(_envelope_model(), data)
    name, params = data.get("recipe"), data.get("params") or {}
    checked = None
    if isinstance(name, str) and name in RECIPES and isinstance(params, dict):
        checked, more = schema.problems(RECIPES[name].Params, params, prefix=("params",))
        lines += more
    schema.raise_problems("recipe", lines)
    shared = {k: getattr(envelope, k) for k in SHARED_KEYS if k in envelope.model_fields_set}
    return RECIPES[name](), shared, checked.model_dump()


@functools.cache
def _envelope_model():
    types = checked_types()
    return schema.strict_model("BuiltInRecipe", {
        "recipe": schema.choice(lambda: RECIPES, "recipe"), "params": dict[str, Any] | None,
        "name": str | None, "description": str | None, **{k: types[k] for k in SHARED_KEYS}})


def run_recipe(store: DuckStore, data: dict[str, Any], on_item: OnItem = None,
               overrides: dict[str, Any] | None = None) -> list[RunResult]:
    """Run a recipe; return the result of every run it made."""
    data = {**data, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    if "recipe" not in data:
        return [generate_run(store, config_from_recipe(data), on_item)]
    recipe, shared, params = built_in(data)
    return recipe.run(store, shared, params, on_item)


RECIPES = Registry("recipe")
register_recipe = RECIPES.add


def _config(shared: dict[str, Any], **kwargs: Any) -> RunConfig:
    known = {f.name for f in fields(RunConfig)}
    return RunConfig(**{k: v for k, v in shared.items() if k in known}, **kwargs)


@register_recipe
class OnboardingQA:
    """Onboarding Q&A for new developers: a git repository -> a summary of each file -> questions
    each summary answers -> {question, summary, file path} triples."""

    name = "onboarding_qa"

    class Params(schema.StrictModel):
        """The params a recipe file may give, with their types and defaults."""

        repo: str = ""  # empty: this project's own repository
        include: list[str] = Field(default_factory=lambda: ["*.py", "*.md"])
        exclude: list[str] = Field(default_factory=lambda: [".venv/*", "tests/*", "data/*"])
        max_files: int = 6
        max_chars: int = 2500
        questions_per_file: int = 2
        summary_template: str = ("Here is the file {ref} from a software project:\n\n{text}\n\n"
                                 "Summarise in two or three sentences what this file does, for a developer "
                                 "who is new to the project.")
        question_template: str = ("Here is a summary of a file in a software project:\n\n{text}\n\n"
                                  "Write one question a new developer might ask that this summary answers. "
                                  "Reply with the question only.")

    def run(self, store: DuckStore, shared: dict, params: dict, on_item: OnItem) -> list[RunResult]:
        repo = params["repo"] or str(settings.PROJECT_DIR)
        source = {"kind": "git", "repo": repo, "include": params["include"], "exclude": params["exclude"],
                  "max_files": params["max_files"], "max_chars": params["max_chars"]}
        summaries = generate_run(store, _config(
            shared, technique=Transform.name, source=source, n=0, template=params["summary_template"],
            prompt_name="onboarding-summaries", run_name=f"onboarding: file summaries ({Path(repo).name})"),
            on_item)
        run, items, prompt = execute(_config(
            shared, technique=Transform.name, source={"kind": "run", "run": summaries.run_id}, n=0,
            per_source=params["questions_per_file"], template=params["question_template"],
            prompt_name="onboarding-questions", run_name=f"onboarding: questions ({Path(repo).name})"),
            store, on_item)
        file_of = dict(store.items([summaries.run_id])[["item_id", "source_ref"]].itertuples(index=False))
        for item in items:
            item.fields = {"question": item.text, "summary": item.source_text,
                           "file_path": file_of.get(item.source_ref)}
        return [summaries, save_and_measure(store, run, items, prompt)]


class Tool(schema.StrictModel):
    """One tool of the catalogue: its name, what it does, and a description of each argument."""

    name: str
    description: str
    parameters: dict[str, str] = Field(default_factory=dict)


@register_recipe
class ToolRouting:
    """Tool routing for agents: a tool catalogue -> varied user requests, each labelled with the
    right tool and its arguments -> a judge step that checks each label."""

    name = "tool_routing"

    class Params(schema.StrictModel):
        """The params a recipe file may give, with their types and defaults."""

        tools: list[Tool] = Field(default_factory=lambda: [
            {"name": "search_docs", "description": "Search the company's internal documentation.",
             "parameters": {"query": "what to search for"}},
            {"name": "call_api", "description": "Call a REST endpoint of the order system.",
             "parameters": {"method": "GET or POST", "path": "the endpoint, e.g. /orders/123"}},
            {"name": "ask_user", "description": "Ask the user a follow-up question when the request is unclear.",
             "parameters": {"question": "the question to ask"}},
            {"name": "handoff_to_human", "description": "Hand the conversation to a human agent "
             "(complaints, legal questions, emergencies).", "parameters": {"reason": "why a human is needed"}},
        ])
        personas: list[str] = Field(default_factory=lambda: [
            "new customer", "software developer", "angry customer", "non-native English speaker"])
        requests_per_tool: int = 4
        judge_model: str = ""  # empty: the generating model
        request_template: str = ("You are a {persona}. Write one message you might send to a company's AI "
                                 "assistant that it can only handle with the tool {tool}: {description} "
                                 "Then give the tool's arguments ({parameters}) filled in from your message.")

    def run(self, store: DuckStore, shared: dict, params: dict, on_item: OnItem) -> list[RunResult]:
        tools = params["tools"]
        if not tools:
            raise SynthError("The tool catalogue is empty. List tools with a name, description and parameters.")
        items: list[Item] = []
        failures: list[dict] = []
        wall = 0.0
        for tool in tools:
            names = list(tool.get("parameters", {}))
            cfg = _config(shared, technique=Sampling.name, n=params["requests_per_tool"],
                          template=params["request_template"].replace("{tool}", tool["name"])
                          .replace("{description}", tool["description"])
                          .replace("{parameters}", ", ".join(names)),
                          variables={"persona": params["personas"]}, prompt_name="tool-routing-requests",
                          output={"schema": {"type": "object", "required": ["request", "arguments"],
                                             "properties": {"request": {"type": "string"}, "arguments": {
                                                 "type": "object", "required": names,
                                                 "properties": {p: {"type": "string"} for p in names}}}}})
            run, made, _ = execute(cfg, store, on_item)
            wall += run.wall_s
            failures += run.failures
            for item in made:
                data = item.fields or {}
                request = data.get("request") if isinstance(data.get("request"), str) else None
                item.meta["raw"] = item.text
                item.text = (request or item.text).strip() or item.text
                item.fields = {"request": request, "tool": tool["name"], "arguments": data.get("arguments")}
                item.variables = {**item.variables, "tool": tool["name"]}
                items.append(item)
        for idx, item in enumerate(items):
            item.idx = idx
        prompt = PromptSpec(template=params["request_template"], name="tool-routing-requests",
                            variables={"tool": [t["name"] for t in tools], "persona": params["personas"]})
        model = shared.get("model") or settings.get("default_model")
        run = Run(name="tool routing: labelled requests", technique="recipe:tool_routing", model=model,
                  params={k: shared.get(k) for k in SHARED_KEYS if k in shared},
                  config={"recipe": self.name, "params": params, **shared}, wall_s=wall,
                  failures=failures, status="partial" if failures else "complete")
        result = save_and_measure(store, run, items, prompt)
        catalogue = "\n".join(f"- {t['name']}: {t['description']} (arguments: {', '.join(t.get('parameters', {}))})"
                              for t in tools)
        rubric = Rubric(name="tool label check", criteria=[
            Criterion("right_tool", "The labelled tool is the best tool in the catalogue for this request."),
            Criterion("arguments_fit", "The labelled arguments are filled in correctly from the request."),
        ], instructions=f"The tool catalogue:\n{catalogue}\n\nScore the label from 1 (wrong) to 5 (exactly right).")
        judged = judge_items(store, [i.item_id for i in items], params["judge_model"] or model, rubric,
                             shared.get("api_base"), shared.get("concurrency", settings.DEFAULT_CONCURRENCY))
        result.judge = judged.to_dict()
        return [result]


def shipped_recipes() -> dict[str, Path]:
    """Recipe files shipped in data/recipes, by file stem."""
    return {p.stem: p for p in sorted(RECIPES_DIR.glob("*.y*ml")) + sorted(RECIPES_DIR.glob("*.json"))}
