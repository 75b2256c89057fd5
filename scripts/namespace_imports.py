"""The mechanical part of issue 13: move the model, the report and the config into their own rooms, and make
every import name the one installed namespace ``gameday``.

Idempotent and re-runnable: a move whose source is gone (already moved) is skipped, an import that already
reads ``gameday.…`` is only re-mapped when it names a moved module. It rewrites every Python file of the tree
(including files it has never seen: new kinds, new faults, new tests) so a branch written with the old bare
imports can be merged first and this script run after it.

What it does, in order:

1. ``git mv`` each file of :data:`MOVES` whose source exists and whose destination does not (a new room gets
   its ``__init__.py``).
2. In every ``.py`` file (not ``.venv``, ``build``, this script): ``from X import …`` / ``import X`` where X is
   one of the repository's top-level folders (:data:`ROOTS`) becomes ``gameday.X'``, X' being X after the moves;
   ``from pkg import module`` whose module moved is split to the module's new package; a string literal that
   is exactly a module's dotted name (``"-m", "cli.main"``, monkeypatch targets) follows the same way.
3. In ``.py``, ``.md``, ``Makefile``, ``Dockerfile`` and ``.yml`` files: the paths of moved files
   (``workflows/drill.py``) and the dotted names of moved modules in prose (``workflows.drill.Drill``) follow.

Then run ``ruff check --fix . && ruff format .`` (import order) and ``make lint``.

Usage: ``python scripts/namespace_imports.py [--dry-run]`` from the repository root.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "gameday"
ROOTS = ("workflows", "activities", "worker", "cli", "demo", "model", "report", "config", "console")
"""The repository's top-level folders installed as ``gameday.<folder>`` (setup.py maps them)."""

_MODEL = (
    "drill",
    "records",
    "traffic",
    "notify_records",
    "gameday",
    "units",
    "errors",
    "probe_prometheus",
    "proxy_records",
    "locks",
    "plan",
    "loader",
    "loader_limits",
    "loader_messages",
    "loader_yaml",
    "gameday_loader",
    "budget",
    "freeze_records",
    "freeze_names",
)

MOVES: tuple[tuple[str, str], ...] = (
    *((f"workflows/{name}.py", f"model/{name}.py") for name in _MODEL),
    ("activities/report.py", "report/run.py"),
    ("activities/report_chart.py", "report/chart.py"),
    ("activities/report_expect.py", "report/expect.py"),
    ("activities/report_gameday.py", "report/gameday.py"),
    ("activities/report_html.py", "report/html.py"),
    ("activities/report_sections.py", "report/sections.py"),
    ("worker/config.py", "config/app.py"),
    ("worker/notify_config.py", "config/notify.py"),
)
"""Old path → new path, relative to the repository root."""

FOLLOWED: tuple[tuple[str, str], ...] = (("activities/score.py", "model/score.py"),)
"""Moves made on another branch (issue 13, kinds): imports follow once the new file exists; never moved here."""

_SKIP_DIRS = {".git", ".venv", "build", "dist", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__"}
_TEXT_SUFFIXES = {".py", ".md", ".yml", ".yaml", ".toml", ".cfg", ".ini", ".txt"}
_TEXT_NAMES = {"Makefile", "Dockerfile"}
_SELF = Path(__file__).resolve()


def _module(path: str) -> str:
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def _moves_in_effect() -> list[tuple[str, str]]:
    followed = [(old, new) for old, new in FOLLOWED if (ROOT / new).exists() and not (ROOT / old).exists()]
    return [*MOVES, *followed]


def module_map() -> dict[str, str]:
    """Old dotted module → new dotted module (both without the namespace)."""
    return {_module(old): _module(new) for old, new in _moves_in_effect()}


def git_moves(dry_run: bool) -> list[str]:
    done = []
    for old, new in MOVES:
        source, target = ROOT / old, ROOT / new
        if not source.exists() or target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        init = target.parent / "__init__.py"
        if not init.exists() and not dry_run:
            init.write_text("")
            subprocess.run(["git", "add", str(init.relative_to(ROOT))], cwd=ROOT, check=True)
        if not dry_run:
            subprocess.run(["git", "mv", old, new], cwd=ROOT, check=True)
        done.append(f"{old} -> {new}")
    return done


def _is_module(dotted: str) -> bool:
    """``dotted`` (no namespace, after the moves) names a module or package of the tree."""
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def new_name(dotted: str, mapping: dict[str, str]) -> str | None:
    """The namespaced name of a module given bare or namespaced, old or new; None when not ours."""
    bare = dotted.removeprefix(f"{NAMESPACE}.")
    if bare.split(".")[0] not in ROOTS:
        return None
    for old in sorted(mapping, key=len, reverse=True):
        if bare == old or bare.startswith(old + "."):
            bare = mapping[old] + bare[len(old) :]
            break
    return f"{NAMESPACE}.{bare}"


_FROM = re.compile(
    r"^(?P<indent>[ \t]*)from[ \t]+(?P<module>[\w.]+)[ \t]+import[ \t]+"
    r"(?P<names>\([^)]*\)|(?:[^\n\\]|\\\n)*)",
    re.MULTILINE,
)
_IMPORT = re.compile(r"^(?P<indent>[ \t]*)import[ \t]+(?P<names>[\w., \t]+?)[ \t]*(?P<comment>#.*)?$", re.MULTILINE)
_ROOTS_PATTERN = "|".join(ROOTS)
_STRING = re.compile(rf"""(?P<quote>["'])(?P<dotted>(?:gameday\.)?(?:{_ROOTS_PATTERN})(?:\.\w+)+)(?P=quote)""")


def _split_names(text: str) -> tuple[list[str], str]:
    """The imported names (``a``, ``b as c``) of a from-import and any trailing comment."""
    comment = ""
    body = text
    if not body.startswith("("):
        body, hashed, rest = body.partition("#")
        comment = (hashed + rest).strip()
    lines = []
    for line in body.strip("()").replace("\\\n", " ").splitlines():
        lines.append(line.split("#", 1)[0])
    names = [name.strip() for name in " ".join(lines).split(",") if name.strip()]
    return names, comment


def _rewrite_from(match: re.Match[str], mapping: dict[str, str]) -> str:
    module = match["module"]
    target = new_name(module, mapping)
    if target is None:
        return match[0]
    names, comment = _split_names(match["names"])
    bare = module.removeprefix(f"{NAMESPACE}.")
    groups: dict[str, list[str]] = {}
    for name in names:
        base = name.split(" as ")[0].strip()
        sub = new_name(f"{bare}.{base}", mapping)
        if sub is not None and sub != f"{target}.{base}" and _is_module(sub.removeprefix(f"{NAMESPACE}.")):
            parent, _, leaf = sub.rpartition(".")
            alias = name.split(" as ", 1)[1].strip() if " as " in name else None
            alias = alias or (None if leaf == base else base)
            groups.setdefault(parent, []).append(f"{leaf} as {alias}" if alias else leaf)
        else:
            groups.setdefault(target, []).append(name)
    if list(groups) == [target] and module == target:
        return match[0]
    indent = match["indent"]
    lines = []
    for parent, members in groups.items():
        lines.append(f"{indent}from {parent} import {', '.join(members)}")  # ruff format wraps it
    if comment:
        lines[-1] += f"  {comment}"
    return "\n".join(lines)


def _rewrite_import(match: re.Match[str], mapping: dict[str, str]) -> str:
    parts = []
    for item in match["names"].split(","):
        name, _, alias = (piece.strip() for piece in item.strip().partition(" as "))
        target = new_name(name, mapping)
        if target is None or target == name:
            parts.append(item.strip())
        elif alias:
            parts.append(f"{target} as {alias}")
        elif "." not in name:
            parts.append(f"{target} as {name}")  # ``import cli`` bound ``cli``: keep that name
        else:
            parts.append(target)
            print(f"  review: 'import {name}' now binds '{NAMESPACE}', not '{name.split('.')[0]}'", file=sys.stderr)
    new = ", ".join(parts)
    if new == match["names"].strip():
        return match[0]
    comment = f"  {match['comment']}" if match["comment"] else ""
    return f"{match['indent']}import {new}{comment}"


_OLD_ROOTS = ("workflows", "activities", "worker", "cli", "demo")
"""The folders that were top-level packages before the namespace: a bare dotted string is only a module name
when it starts with one of these (``"report.html"`` is a file name, not the module ``report/html.py``)."""


def _rewrite_string(match: re.Match[str], mapping: dict[str, str]) -> str:
    dotted = match["dotted"]
    if not dotted.startswith(f"{NAMESPACE}.") and dotted.split(".")[0] not in _OLD_ROOTS:
        return match[0]
    target = new_name(dotted, mapping)
    if target is None:
        return match[0]
    bare = target.removeprefix(f"{NAMESPACE}.")
    pieces = bare.split(".")
    # a module, or a module's attribute (a monkeypatch target): the module part must be a module file.
    owner = ROOT.joinpath(*pieces[:-1]).with_suffix(".py")
    if not (_is_module(bare) or (len(pieces) > 2 and owner.is_file())):
        return match[0]
    return f"{match['quote']}{target}{match['quote']}"


_INLINE_FROM = re.compile(r"(?P<pre>[;\"']\s*)from[ \t]+(?P<module>[\w.]+)(?P<post>[ \t]+import[ \t])")
"""A from-import inside a string (``python -c "...; from demo.system import DemoSystem"``): the module follows."""


def _rewrite_inline(match: re.Match[str], mapping: dict[str, str]) -> str:
    target = new_name(match["module"], mapping)
    return match[0] if target is None else f"{match['pre']}from {target}{match['post']}"


def rewrite_python(text: str, mapping: dict[str, str]) -> str:
    text = _FROM.sub(lambda m: _rewrite_from(m, mapping), text)
    text = _INLINE_FROM.sub(lambda m: _rewrite_inline(m, mapping), text)
    text = _IMPORT.sub(lambda m: _rewrite_import(m, mapping), text)
    return _STRING.sub(lambda m: _rewrite_string(m, mapping), text)


def rewrite_prose(text: str, moves: list[tuple[str, str]]) -> str:
    """Paths of moved files, and dotted names of moved modules outside import statements."""
    for old, new in moves:
        text = re.sub(rf"(?<![\w/.]){re.escape(old)}", new, text)
    for old, new in sorted(((_module(o), _module(n)) for o, n in moves), key=lambda p: -len(p[0])):
        text = re.sub(rf"(?<![\w/]){re.escape(NAMESPACE)}\.{re.escape(old)}(?!\w)", f"{NAMESPACE}.{new}", text)
        text = re.sub(rf"(?<![\w./]){re.escape(old)}(?![\w/])", new, text)
    return text


def files() -> list[Path]:
    found = []
    for path in ROOT.rglob("*"):
        if any(part in _SKIP_DIRS for part in path.relative_to(ROOT).parts) or not path.is_file():
            continue
        if path.resolve() == _SELF or "histories" in path.parts:
            continue
        if path.suffix in _TEXT_SUFFIXES or path.name in _TEXT_NAMES:
            found.append(path)
    return sorted(found)


def main(argv: list[str]) -> int:
    dry_run = "--dry-run" in argv
    for line in git_moves(dry_run):
        print(f"moved {line}")
    mapping = module_map()
    moves = _moves_in_effect()
    changed = 0
    for path in files():
        text = path.read_text(encoding="utf-8")
        new = text
        if path.suffix == ".py":
            new = rewrite_python(new, mapping)
        if path.name != "pyproject.toml":
            new = rewrite_prose(new, moves)
        if new != text:
            changed += 1
            if not dry_run:
                path.write_text(new, encoding="utf-8")
            print(f"rewrote {path.relative_to(ROOT)}")
    print(f"{changed} files rewritten; now: ruff check --fix . && ruff format . && make lint")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
