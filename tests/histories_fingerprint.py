"""The fingerprint of the workflow code that the recorded histories in tests/histories/ were recorded with.

A workflow change that is not deterministic with running drills fails the replay test; a change that *is* (or
that adds a branch no recorded history takes) would pass it silently and leave the new branch unchecked. So the
histories carry the fingerprint of the code they were recorded from, and the replay test fails when the code has
changed since: re-record (``make histories``), which re-runs the workflow tests with
``GAMEDAY_RECORD_HISTORIES=1`` and writes the new fingerprint.

The fingerprint is a hash of the modules' syntax trees without docstrings (attributes' too) and without import
statements, so comments, docstrings, formatting and where an imported name lives (a module moved to another
package, issue 13) do not count; everything else that runs in the workflow sandbox does.

Usage: ``python -m tests.histories_fingerprint [--write]``.
"""

from __future__ import annotations

import ast
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HISTORIES = ROOT / "tests" / "histories"
STORED = HISTORIES / "FINGERPRINT"

WORKFLOW_MODULES = (
    "workflows/drill_workflow.py",
    "workflows/gameday_workflow.py",
    "workflows/proxy_holds.py",
    "workflows/traffic_hold.py",
    "workflows/notify_sender.py",
    "workflows/search.py",
)
"""The modules whose code runs inside a workflow: a change to any of them asks for histories recorded anew."""


def _ignored(statement: ast.stmt) -> bool:
    """A docstring (a module's, a class's, a function's or an attribute's: a bare string) or an import.

    Where an imported name lives is not workflow behaviour (issue 13 moved modules); the code that uses the
    name still counts.
    """
    if isinstance(statement, ast.Import | ast.ImportFrom):
        return True
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _without_docstrings_and_imports(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            statements = getattr(node, field, None)
            if isinstance(statements, list) and statements and isinstance(statements[0], ast.stmt):
                statements[:] = [statement for statement in statements if not _ignored(statement)] or [ast.Pass()]
    return tree


def current() -> str:
    """The fingerprint of today's workflow code."""
    digest = hashlib.sha256()
    for name in WORKFLOW_MODULES:
        path = ROOT / name
        if not path.exists():
            continue
        tree = _without_docstrings_and_imports(ast.parse(path.read_text(), filename=name))
        digest.update(name.encode())
        digest.update(ast.dump(tree, include_attributes=False).encode())
    return digest.hexdigest()[:16]


def stored() -> str:
    """The fingerprint the recorded histories were made with ('' when none was written)."""
    return STORED.read_text().strip() if STORED.exists() else ""


def main(argv: list[str]) -> int:
    if "--write" in argv:
        STORED.write_text(current() + "\n")
        print(f"histories fingerprint written: {current()}")
        return 0
    print(f"code {current()}, histories {stored() or 'none'}")
    return 0 if current() == stored() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
