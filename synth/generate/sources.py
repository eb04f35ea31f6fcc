"""Sources: existing material as a list of texts for back-translation and transformation.

Reads: pasted text, rows of a JSONL or CSV file, the files of a folder, or the tracked files of a
local git repository (working tree or one commit). Writes: nothing. Every :class:`SourceText`
carries a ``ref`` so the items generated from it keep a link to where it came from.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from synth.generate.ingest import read_records, texts_from_records
from synth.kernel.errors import SynthError

DEFAULT_INCLUDE = ("*.py", "*.md", "*.txt", "*.rst", "*.toml", "*.yaml", "*.yml", "*.json", "*.js",
                   "*.ts", "*.go", "*.rs", "*.java", "*.sql", "*.sh")
DEFAULT_EXCLUDE = (".git/*", ".venv/*", "venv/*", "node_modules/*", "__pycache__/*", "*.lock",
                   "*.min.js", "data/*.jsonl")

LANGUAGES = {
    ".py": "python", ".md": "markdown", ".txt": "text", ".rst": "restructuredtext", ".toml": "toml",
    ".yaml": "yaml", ".yml": "yaml", ".json": "json", ".js": "javascript", ".ts": "typescript",
    ".go": "go", ".rs": "rust", ".java": "java", ".sql": "sql", ".sh": "shell",
}

REMOTE_PREFIXES = ("http://", "https://", "git@", "ssh://", "git://")
BINARY_SNIFF = 8192  # bytes looked at for a NUL, the way git itself guesses "binary"


@dataclass(frozen=True)
class SourceText:
    """One source text and where it came from (``pasted#3``, ``reviews.csv#row=12``, ``synth/store.py``)."""

    text: str
    ref: str
    # Left out of the hash so a SourceText stays hashable although meta is a dict.
    meta: dict[str, Any] = field(default_factory=dict, hash=False)


def from_pasted(text: str, split: str = "blank-line") -> list[SourceText]:
    """Pasted texts, split at blank lines (``"blank-line"``) or one per line (``"line"``), stripped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if split == "blank-line":
        parts = re.split(r"\n[ \t]*\n", text)
    elif split == "line":
        parts = text.split("\n")
    else:
        raise SynthError(f"Unknown split {split!r}. Use 'blank-line' (texts separated by an empty line) "
                         "or 'line' (one text per line).")
    texts = [p.strip() for p in parts if p.strip()]
    if not texts:
        raise SynthError("The pasted text is empty: paste at least one text "
                         + ("(separate texts with a blank line)." if split == "blank-line" else "(one per line)."))
    return [SourceText(t, f"pasted#{i}", {}) for i, t in enumerate(texts, start=1)]


def from_records(rows: list[dict[str, Any]], text_column: str, source_name: str) -> list[SourceText]:
    """One source per row; the other columns go to ``meta["columns"]``, ``ref`` names the 1-based row."""
    texts = texts_from_records(rows, text_column, source_name)
    return [
        SourceText(text, f"{source_name}#row={i}", {"columns": {k: v for k, v in row.items() if k != text_column}})
        for i, (text, row) in enumerate(zip(texts, rows), start=1)
    ]


def from_file(path: str | Path, text_column: str = "text", data: bytes | None = None) -> list[SourceText]:
    """The rows of a JSONL or CSV file (``data`` overrides reading ``path``, for uploads)."""
    rows = read_records(path, data)
    return from_records(rows, text_column, Path(path).name)


def from_folder(path: str | Path, include: tuple[str, ...] = DEFAULT_INCLUDE,
                exclude: tuple[str, ...] = DEFAULT_EXCLUDE, max_files: int = 200,
                max_chars: int = 6000) -> list[SourceText]:
    """The text files below ``path``, in sorted order, with ``ref`` their path relative to ``path``."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise SynthError(f"Folder not found: {root}. Check the path (it must be a folder, not a file).")
    # Prune only with globs ending in "*": those match everything below a directory they match,
    # so skipping the directory (a .venv can hold 100,000 files) changes no result.
    prune = [g for g in exclude if g.endswith("*")]
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [d for d in dirnames if not _matches(f"{prefix}{d}/", prune)]
        paths.extend(prefix + name for name in filenames)
    return _collect(paths, partial(_read_working_file, root), include, exclude, max_files, max_chars,
                    where=f"folder {root}")


def from_git(repo: str | Path, include: tuple[str, ...] = DEFAULT_INCLUDE,
             exclude: tuple[str, ...] = DEFAULT_EXCLUDE, max_files: int = 200, max_chars: int = 6000,
             ref: str | None = None) -> list[SourceText]:
    """The tracked text files of a local git working tree, or of commit ``ref`` if given.

    ``ref`` of each source is its path relative to ``repo`` (a subfolder of a repository gives
    only the files below it). Untracked and ignored files never appear.
    """
    if str(repo).startswith(REMOTE_PREFIXES):
        raise SynthError(f"{repo} is a remote repository; only local ones can be read (this machine may "
                         "be offline). Clone it first (git clone URL) and pass the local path.")
    root = Path(repo).expanduser()
    if not root.is_dir():
        raise SynthError(f"Repository folder not found: {root}. Pass the path of a local git working tree.")
    if ref is None:
        listing = _git(root, "ls-files", "-z")
        read = partial(_read_working_file, root)
        where = f"git repository {root}"
    else:
        listing = _git(root, "ls-tree", "-r", "-z", "--name-only", ref)
        read = partial(_git_show, root, ref)
        where = f"git repository {root} at {ref}"
    paths = [p for p in listing.decode("utf-8", "surrogateescape").split("\0") if p]
    found = _collect(paths, read, include, exclude, max_files, max_chars, where=where)
    if ref is not None:
        found = [SourceText(s.text, s.ref, {**s.meta, "git_ref": ref}) for s in found]
    return found


def _git(root: Path, *args: str) -> bytes:
    """The stdout of ``git -C root ARGS``, or a SynthError that says why git failed."""
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=False)
    except FileNotFoundError:
        raise SynthError("git is not installed (or not on PATH). Install git, or load the files "
                         "with from_folder instead.") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        if "not a git repository" in message:
            raise SynthError(f"{root} is not a git repository. Pass the folder of a git working tree, "
                             "or load it as a plain folder with from_folder.")
        if args[0] == "ls-tree":
            raise SynthError(f"git could not read {args[-1]!r} in {root} ({message}). "
                             "Give a branch, tag or commit that exists there (see git log).")
        raise SynthError(f"git {args[0]} failed in {root}: {message}. Check the repository with git status.")
    return done.stdout


def _git_show(root: Path, ref: str, rel: str) -> bytes | None:
    """The content of ``rel`` at commit ``ref``, or None where it is no file (a submodule)."""
    # "./" makes the path relative to root rather than to the top of the repository.
    done = subprocess.run(["git", "-C", str(root), "show", f"{ref}:./{rel}"], capture_output=True, check=False)
    return done.stdout if done.returncode == 0 else None


def _read_working_file(root: Path, rel: str) -> bytes | None:
    """The bytes of ``root/rel``, or None if it is missing, not a regular file, or a link."""
    path = root / rel
    # A link may point outside the folder; a file tracked but deleted is simply absent.
    if path.is_symlink() or not path.is_file():
        return None
    return path.read_bytes()


def _matches(rel: str, globs: Iterable[str]) -> bool:
    """Whether a glob matches ``rel`` or a trailing part of it that starts at a folder (the name too)."""
    # Trailing parts, so ".venv/*" or "node_modules/*" also catch the ones nested in subfolders.
    parts = rel.split("/")
    tails = ["/".join(parts[i:]) for i in range(len(parts))]
    return any(fnmatchcase(tail, g) for tail in tails for g in globs)


def _collect(paths: Iterable[str], read: Callable[[str], bytes | None], include: tuple[str, ...],
             exclude: tuple[str, ...], max_files: int, max_chars: int, where: str) -> list[SourceText]:
    """The filter, read and truncate rules shared by folders and git: one source per text file.

    Keeps paths matching an include glob and no exclude glob (see :func:`_matches`), in sorted
    order; skips binary and empty files; truncates to ``max_chars``; stops after ``max_files``.
    """
    if max_files < 1 or max_chars < 1:
        raise SynthError(f"max_files ({max_files}) and max_chars ({max_chars}) must be at least 1.")
    include, exclude = tuple(include), tuple(exclude)
    sources: list[SourceText] = []
    for rel in sorted(paths):
        if len(sources) >= max_files:
            break
        if not _matches(rel, include) or _matches(rel, exclude):
            continue
        data = read(rel)
        if data is None or b"\0" in data[:BINARY_SNIFF]:
            continue
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            continue
        if not text.strip():
            continue
        suffix = PurePosixPath(rel).suffix.lower()
        meta = {"path": rel, "chars": len(text), "truncated": len(text) > max_chars,
                "language": LANGUAGES.get(suffix, "text")}
        sources.append(SourceText(text[:max_chars], rel, meta))
    if not sources:
        raise SynthError(f"No text file in {where} matched include={list(include)} and "
                         f"exclude={list(exclude)} (binary and empty files are skipped). "
                         "Pass other include/exclude patterns, e.g. include=('*.py',) or exclude=().")
    return sources
