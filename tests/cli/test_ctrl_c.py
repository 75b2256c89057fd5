"""Ctrl-C on ``gameday run --wait`` never leaves a fault applied without a word: a real ``gameday`` process gets
real SIGINTs. The first says the drill still runs and gives the exact stop command; a second within a few seconds
stops it, waits for the reverts, prints them, and exits with the verdict's code."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading

import pytest

from gameday.model.records import EXIT_CODES, Verdict
from tests.cli.conftest import Gameday
from tests.cli.test_cli_commands import command_drill, unique
from tests.conftest import installed_binary
from tests.harness import wait_until

pytestmark = pytest.mark.integration


class Output:
    """A process's output, read line by line in the background so the test can wait for what it prints."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        stream = proc.stdout
        self._reader = threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True)
        self._reader.start()

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def finished(self) -> bool:
        return not self._reader.is_alive()


def test_ctrl_c_once_says_how_to_stop_and_twice_stops_the_drill_and_prints_the_reverts(gameday: Gameday) -> None:
    marker = gameday.workdir / unique("ctrl-c")
    drill = gameday.drill(command_drill(unique("cli-ctrl-c"), marker, probe="true", observe="5m"))
    proc = subprocess.Popen(
        [installed_binary("gameday"), "run", str(drill), "--wait"],
        env={**os.environ, **gameday.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = Output(proc)
    try:
        wait_until(marker.exists, what="the fault to be applied", timeout=60)
        wait_until(lambda: "inject" in out.text, what="the inject step to be printed", timeout=30)
        found = re.search(r"started (\S+)", out.text)
        assert found, out.text
        run_id = found[1]

        proc.send_signal(signal.SIGINT)
        wait_until(lambda: "is still running" in out.text, what="the first Ctrl-C's answer", timeout=10)
        assert f"gameday stop {run_id} --reason" in out.text
        assert proc.poll() is None and marker.exists(), "one Ctrl-C neither leaves nor stops the drill"

        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    wait_until(out.finished, what="the output to be read", timeout=10)
    text = out.text
    assert code == EXIT_CODES[Verdict.ABORTED], text
    assert f"stopping {run_id}" in text
    assert f"{run_id}: rolled back" in text and re.search(r"reverted\s+run sh", text), text
    assert "ABORTED" in text and "Ctrl-C twice on gameday run --wait" in text
    assert not marker.exists(), "the fault was reverted"
    record = gameday.recorded(run_id)
    assert record.verdict == Verdict.ABORTED and record.stop is not None
