"""The README's "A 5-minute tour", run as written: its commands and files, read from README.md itself, in order,
against the demo system started as the README says (``gameday dev --demo &``: a real Temporal dev server, worker and
demo services, every command a real ``gameday`` process). README and test cannot drift.

What the test does that a person at a shell would do, and nothing else:

- each ```yaml block of the section is saved under the name its first line gives (``# inventory-stall.yaml``);
- ``. .venv/bin/activate`` is not run: every command runs the ``gameday`` installed next to this Python;
- a command ending in `` &`` runs in the background, and ``kill %1`` sends that background job SIGTERM;
- ``RUN_ID`` is replaced by the ``run_id`` of the JSON line the last ``gameday run … --json`` printed, as the README
  asks the reader to paste it.

The README says every command exits 0 against the demo: each must. The section's ```text block is what
``gameday dev --demo`` prints about the demo system: its lines must be in that output, verbatim.
The tour uses fixed ports (7233, 8233, 8000, 8001) and ``/tmp/gameday-demo``, as written: if one of those ports is
taken the test fails, saying which.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest

from gameday.demo.system import SERVE_DIR, is_running
from tests.conftest import installed_binary
from tests.harness import demo_ports, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _demo_ports() -> Iterator[None]:
    """The tour serves the demo on its documented ports: one test process at a time (the examples' runner too)."""
    with demo_ports():
        yield


README = Path(__file__).parents[2] / "README.md"
SECTION = "## A 5-minute tour"
PORTS = {7233: "Temporal frontend", 8233: "Temporal Web UI", 8000: "demo shop API", 8001: "demo inventory"}
COMMAND_TIMEOUT_S = 240


@dataclass
class Tour:
    """The tour's steps, in README order: files to write and command lines to run."""

    steps: list[tuple[str, str]] = field(default_factory=list)
    """``("file", name)`` with the file's text in ``files``, or ``("command", line)``."""
    files: dict[str, str] = field(default_factory=dict)
    printed: list[str] = field(default_factory=list)
    """The lines of the section's ```text block: what ``gameday dev --demo`` prints about the demo system."""


def read_tour(readme: str) -> Tour:
    """The section's fenced blocks, in order: yaml files, bash command lines (comments dropped), text output."""
    text = readme.split(f"{SECTION}\n", 1)[1].split("\n## ", 1)[0]
    tour = Tour()
    for lang, body in re.findall(r"^```(\w+)\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE):
        if lang == "yaml":
            first = body.splitlines()[0]
            assert re.fullmatch(r"# [\w.-]+\.yaml", first), f"a tour yaml block must start with '# NAME.yaml': {first}"
            name = first[2:]
            tour.files[name] = body
            tour.steps.append(("file", name))
        elif lang == "bash":
            for line in body.splitlines():
                if shlex.split(line, comments=True):  # lines that are only comments continue the one above
                    tour.steps.append(("command", line))
        elif lang == "text":
            tour.printed += [line for line in body.splitlines() if line.strip()]
    return tour


def port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def processes_naming(*texts: str) -> list[int]:
    """Live processes whose command line contains every one of ``texts``."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and proc.name != str(os.getpid()):
            with contextlib.suppress(OSError):
                cmdline = (proc / "cmdline").read_bytes()
                if all(text.encode() in cmdline for text in texts) and is_running(int(proc.name)):
                    found.append(int(proc.name))
    return found


def worker_polls(address: str, queue: str) -> bool:
    """Whether a worker polls ``queue`` of the default namespace at ``address`` (``False`` while unreachable)."""
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
    from temporalio.client import Client

    async def ask() -> bool:
        try:
            client = await Client.connect(address)
            answer = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(namespace="default", task_queue=TaskQueue(name=queue))
            )
        except Exception:
            return False
        return len(answer.pollers) > 0

    polls = asyncio.run(ask())
    if not polls:
        time.sleep(0.2)
    return polls


def serving(job: subprocess.Popen[bytes], log: Path) -> bool:
    """``gameday dev --demo`` has said what it serves and its worker polls the default task queue."""
    assert job.poll() is None, f"gameday dev --demo exited with {job.returncode}:\n{log.read_text()}"
    return "worker on task queue" in log.read_text() and worker_polls("127.0.0.1:7233", "gameday")


def test_the_readme_tour_sections_hold_files_commands_and_the_demo_output() -> None:
    tour = read_tour(README.read_text(encoding="utf-8"))

    commands = [line for kind, line in tour.steps if kind == "command"]
    assert set(tour.files) == {"inventory-stall.yaml", "inventory-stall-gated.yaml", "gameday.yaml"}
    assert shlex.split(commands[1], comments=True) == ["gameday", "dev", "--demo", "&"]
    assert shlex.split(commands[-1], comments=True) == ["kill", "%1"]
    assert any(" pidfile " in line for line in tour.printed)


@pytest.mark.timeout(900)
def test_the_readme_tour_runs_as_written_against_gameday_dev_demo(tmp_path: Path) -> None:
    tour = read_tour(README.read_text(encoding="utf-8"))
    taken = [f"{port} ({what})" for port, what in PORTS.items() if port_taken(port)]
    assert not taken, f"the tour needs these ports of 127.0.0.1, in use now: {', '.join(taken)}"

    gameday = installed_binary("gameday")
    env = {name: value for name, value in os.environ.items() if not name.startswith("GAMEDAY_")}
    env |= {"GAMEDAY_DATA_DIR": str(tmp_path / "data"), "PATH": f"{Path(gameday).parent}{os.pathsep}{env['PATH']}"}
    workdir = tmp_path / "tour"
    workdir.mkdir()
    dev_log = tmp_path / "dev.out"
    background: subprocess.Popen[bytes] | None = None
    run_id: str | None = None
    transcript: list[str] = []
    try:
        for kind, line in tour.steps:
            if kind == "file":
                (workdir / line).write_text(tour.files[line], encoding="utf-8")
                continue
            argv = shlex.split(line, comments=True)
            if argv[0] in (".", "source"):
                continue  # activating the virtualenv: the installed gameday is first on PATH
            if argv[-1] == "&":
                assert background is None, "the tour starts one background job"
                with dev_log.open("wb") as out:
                    background = subprocess.Popen(
                        argv[:-1], cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
                    )
                what = f"{line!r} to serve the demo and poll its task queue"
                wait_until(partial(serving, background, dev_log), what=what, timeout=90)
                printed = dev_log.read_text()
                missing = [expected for expected in tour.printed if expected not in printed.splitlines()]
                assert not missing, f"the README shows lines '{line}' did not print:\n{missing}\n---\n{printed}"
                continue
            if argv == ["kill", "%1"]:
                assert background is not None, "kill %1 without a background job"
                background.send_signal(signal.SIGTERM)
                code = background.wait(timeout=60)
                assert code == 0, f"{line}: the background job exited with {code}:\n{dev_log.read_text()}"
                continue
            if "RUN_ID" in argv:
                assert run_id is not None, f"{line}: no earlier `gameday run ... --json` printed a run_id"
                argv = [run_id if arg == "RUN_ID" else arg for arg in argv]
            done = subprocess.run(
                argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=COMMAND_TIMEOUT_S
            )
            out, err = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
            transcript.append(f"$ {shlex.join(argv)}  -> {done.returncode}\n{out}{err}")
            assert done.returncode == 0, "\n".join(transcript) + f"\n--- gameday dev --demo:\n{dev_log.read_text()}"
            if "--json" in argv:
                run_id = json.loads(out.strip().splitlines()[-1])["run_id"]

        assert background is not None and background.poll() is not None, "the tour ends with `kill %1`"
        # Everything `gameday dev --demo` started went with it: services, their pidfiles, the dev server.
        assert sorted(p.name for p in SERVE_DIR.glob("*.pid")) == []
        assert processes_naming(str(tmp_path / "data")) == []
        assert [port for port in PORTS if port_taken(port)] == []
    finally:
        if background is not None and background.poll() is None:
            background.send_signal(signal.SIGTERM)
            try:
                background.wait(timeout=30)
            except subprocess.TimeoutExpired:
                background.kill()
                background.wait()
        # Only what this test started: the dev server (names its data dir) and the demo services (name SERVE_DIR).
        for pid in processes_naming(str(tmp_path / "data")) + processes_naming("demo.", str(SERVE_DIR)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)


def test_dev_demo_with_a_demo_port_taken_says_which_in_one_line_and_leaves_nothing_running(tmp_path: Path) -> None:
    from gameday.worker.devserver import free_port

    env = {name: value for name, value in os.environ.items() if not name.startswith("GAMEDAY_")}
    env["GAMEDAY_DATA_DIR"] = str(tmp_path / "data")
    port, ui_port = free_port(), free_port()
    argv = [installed_binary("gameday"), "dev", "--demo", "--port", str(port), "--ui-port", str(ui_port)]
    argv += ["--demo-dir", str(tmp_path / "demo")]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):  # already taken by someone else: the same refusal
            squatter.bind(("127.0.0.1", 8001))
            squatter.listen()
        try:
            done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        finally:
            leftover = processes_naming(str(tmp_path))
            for pid in leftover:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert "port 8001 (the demo inventory) is in use on 127.0.0.1" in err
    assert "Traceback" not in err
    assert leftover == [], "the dev server (or a demo service) outlived the refusal"
