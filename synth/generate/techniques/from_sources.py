"""What techniques that start from existing texts share: reading their sources and planning
``per_source`` items from each source text."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synth.generate.prompting import render_template, user_message
from synth.generate.techniques.base import Plan, Planned, Technique
from synth.kernel.errors import SynthError
from synth.kernel.records import PromptSpec

if TYPE_CHECKING:
    from synth.generate.config import RunConfig
    from synth.generate.sources import SourceText
    from synth.store import DuckStore


def load_sources(cfg: "RunConfig", store: "DuckStore | None") -> list["SourceText"]:
    """The source texts a run starts from, as its ``source`` setting describes them."""
    from synth.generate import sources
    from synth.generate.sources import SourceText

    spec = dict(cfg.source or {})
    kind = spec.pop("kind", None)
    if kind == "pasted":
        found = sources.from_pasted(spec.get("text", ""), spec.get("split", "blank-line"))
    elif kind == "file":
        if not spec.get("path"):
            raise SynthError("Choose a JSONL or CSV file of source texts.")
        found = sources.from_file(spec["path"], spec.get("text_column", "text"), spec.get("data"))
    elif kind == "folder":
        if not spec.get("path"):
            raise SynthError("Give the folder that holds the source files.")
        found = sources.from_folder(spec["path"], **_file_options(spec))
    elif kind == "git":
        found = sources.from_git(spec.get("repo", "."), ref=spec.get("ref"), **_file_options(spec))
    elif kind == "run":
        if store is None:
            raise SynthError("Reading an earlier run needs a database.")
        run_id = store.resolve_run(spec["run"])
        frame = store.items([run_id])
        found = [SourceText(text=t, ref=i, meta={"run_id": run_id}) for t, i in zip(frame["text"], frame["item_id"])]
    else:
        raise SynthError("This technique needs source texts: pasted texts, a JSONL/CSV file, a folder, "
                         "a git repository or an earlier run (source kind 'pasted', 'file', 'folder', "
                         f"'git' or 'run'); got {kind!r}.")
    if not found:
        raise SynthError("The source holds no texts. Choose another source.")
    limit = cfg.n if cfg.n and cfg.n > 0 else len(found)
    return found[:limit]


def _file_options(spec: dict) -> dict:
    keys = ("include", "exclude", "max_files", "max_chars")
    return {k: (tuple(spec[k]) if k in ("include", "exclude") else spec[k]) for k in keys if k in spec}


class FromSources(Technique):
    """Shared planning for techniques that make ``per_source`` items from each source text."""

    input = "sources"
    min_n = 0
    default_n = 0
    form = ("source", "source_template")

    def version(self, cfg: "RunConfig") -> PromptSpec:
        return cfg.version_spec(cfg.template or self.default_template, {})

    def plan(self, cfg: "RunConfig", store: "DuckStore | None") -> Plan:
        template = cfg.template or self.default_template
        prompt = self.version(cfg)
        items = []
        for src in load_sources(cfg, store):
            columns = src.meta.get("columns", {}) if isinstance(src.meta, dict) else {}
            values = {**{k: v for k, v in columns.items() if isinstance(k, str)}, "text": src.text,
                      "ref": src.ref}
            body = render_template(template, values)
            for _ in range(max(1, cfg.per_source)):
                items.append(Planned(len(items), user_message(cfg, body), rendered_prompt=body,
                                     source_ref=src.ref, source_text=src.text,
                                     meta={k: v for k, v in (src.meta or {}).items() if k != "columns"}))
        return Plan(prompt, items)
