"""``gameday validate`` and ``run --dry-run`` of drills with a ``file`` target, through the CLI."""

from __future__ import annotations

from pathlib import Path

from gameday.worker.devserver import free_port
from tests.cli.conftest import Gameday

DRILLS = Path(__file__).resolve().parents[1] / "drills"


def test_validate_accepts_a_drill_with_file_faults_and_exits_0(gameday: Gameday) -> None:
    result = gameday("validate", str(DRILLS / "good" / "file_fault.yaml"))
    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout and "file-fault" in result.stdout


def test_validate_locates_a_relative_path_and_an_action_a_file_does_not_have(gameday: Gameday) -> None:
    bad = gameday.drill(
        "name: bad-file\n"
        "targets:\n"
        "  conf: {file: {path: etc/app.conf}}\n"
        "  log: {file: {path: /var/log/app.log}}\n"
        "faults:\n"
        "  - {target: log, action: fill, size: 20g}\n"
    )
    result = gameday("validate", str(bad))
    assert result.exit_code == 1, result.output
    assert f"{bad}:3:" in result.stderr and "targets.conf.file.path: expected an absolute path" in result.stderr
    assert f"{bad}:6:" in result.stderr and "faults[0].size" in result.stderr
    assert "Traceback" not in result.output

    paused = gameday.drill(
        "name: paused-file\ntargets:\n  log: {file: {path: /var/log/app.log}}\n"
        "faults:\n  - {target: log, action: pause}\n"
    )
    result = gameday("validate", str(paused))
    assert result.exit_code == 1, result.output
    assert "action 'pause' does not apply to file target 'log'; expected one of: corrupt, fill, remove" in (
        result.stderr
    )


def test_dry_run_describes_each_file_fault_and_its_exact_revert_touching_nothing(gameday: Gameday) -> None:
    target = gameday.workdir / "config.yaml"
    target.write_text("port: 8000\n")
    drill = gameday.drill(
        "name: file-dry-run\n"
        f"targets:\n  conf: {{file: {{path: {target}}}}}\n"
        "faults:\n"
        "  - {target: conf, action: remove}\n"
        "  - {target: conf, action: corrupt, bytes: 4}\n"
        "observe: {duration: 1s}\n"
    )
    closed = f"127.0.0.1:{free_port()}"  # a dry run connects to nothing
    result = gameday("--address", closed, "run", str(drill), "--dry-run")
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert f"conf: file {target}" in out
    assert "remove conf: delete the file" in out and "invert 4 byte(s) from offset 0" in out
    assert "revert: restore the copy taken before (content, mode, owner, mtime) if the file differs" in out
    assert "lock what conf resolve(s) to" in out
    assert target.read_text() == "port: 8000\n"
