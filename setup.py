"""Install the repository's top-level folders as one import namespace, ``gameday`` (issue 13).

The folders stay where they are in the repository (``workflows/``, ``activities/``, ...); the wheel holds them
as ``gameday/workflows``, ``gameday/activities``, ... so its only top-level name is ``gameday``. A user's own
``workflows.py`` or ``cli.py`` beside a drill, or another distribution's ``workflows`` package, cannot shadow
or overwrite ours. ``gameday`` itself is a namespace package (no ``__init__.py``). Metadata: pyproject.toml.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import find_packages, setup

FOLDERS = ("workflows", "activities", "worker", "cli", "demo", "model", "report", "config", "console")
"""Each folder is installed as ``gameday.<folder>``; scripts/namespace_imports.py knows the same list."""

packages = []
package_dir = {}
for folder in (name for name in FOLDERS if Path(name, "__init__.py").is_file()):
    for found in (folder, *(f"{folder}.{sub}" for sub in find_packages(folder))):
        packages.append(f"gameday.{found}")
        package_dir[f"gameday.{found}"] = found.replace(".", "/")

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={
        "gameday.demo": ["*.yaml"],
        "gameday.activities.migrations": ["alembic.ini", "script.py.mako"],
        "gameday.console": ["templates/*.html", "static/*"],
    },
)
