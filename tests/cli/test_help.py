"""Help that teaches, and usage that answers the way README says: every command's ``--help`` (snapshots under
``tests/cli/help/``), flags shown as flags, arguments named alike, ``--version``, usage errors exit 1, durations
and run ids printed as written. No Temporal server needed: nothing here reaches one."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer._click.core import Command
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner, Result

from gameday.activities.store import Store
from gameday.cli.main import app
from tests.activities.test_store import make_record
from tests.conftest import installed_binary

WIDTH = "120"
"""The terminal width every help is rendered at: fixed, so the snapshots do not depend on the machine."""
SNAPSHOTS = Path(__file__).parent / "help"
REGENERATE = "GAMEDAY_REGENERATE_HELP"
"""Set (to anything) to rewrite the snapshots from the current help texts instead of comparing with them."""


def commands(command: Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path of the app, groups included: ``()``, ``("run",)``, ``("schedule", "add")``…"""
    yield path
    if isinstance(command, TyperGroup):
        for name, sub in sorted(command.commands.items()):
            yield from commands(sub, (*path, name))


EVERY_COMMAND = list(commands(get_command(app)))


def gameday(*args: str, **env: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": WIDTH, "TERMINAL_WIDTH": WIDTH, **env})


def help_of(path: tuple[str, ...]) -> str:
    result = gameday(*path, "--help")
    assert result.exit_code == 0, result.output
    return "\n".join(line.rstrip() for line in result.stdout.splitlines()).strip("\n") + "\n"


def snapshot_file(path: tuple[str, ...]) -> Path:
    return SNAPSHOTS / ("-".join(("gameday", *path)) + ".txt")


# --- usage errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--bogus", "x.yaml"],  # an unknown option
        ["run"],  # a missing argument
        ["nosuch"],  # an unknown command
        ["list", "--limit", "many"],  # a value of the wrong type
        ["history", "x", "--limit", "0"],  # a value out of range
        ["schedule", "show"],  # a missing argument, in a group
        ["db", "nosuch"],  # an unknown command, in a group
        ["--address"],  # a global option without its value
        [],  # no command at all: the help, as a usage error
    ],
)
def test_a_usage_error_exits_1_as_readme_says_never_2_which_is_deviated(args: list[str]) -> None:
    result = gameday(*args)

    assert result.exit_code == 1, result.output
    assert "Usage: gameday" in result.output or "Error" in result.output
    assert "Traceback" not in result.output


def test_readme_states_the_exit_codes_the_cli_uses_for_usage_errors() -> None:
    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    assert "Usage errors (an unknown option, a missing argument, a bad value) and files with problems exit 1" in readme
    assert "`DEVIATED` 2" in readme


# --- help -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", EVERY_COMMAND, ids=lambda p: " ".join(("gameday", *p)))
def test_every_help_shows_flags_as_flags_and_arguments_in_capitals(path: tuple[str, ...]) -> None:
    text = help_of(path)

    assert "<bool>" not in text  # `--wait <bool>` invites `--wait true`, which then reads `true` as the FILE
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage
    for word in usage.split("Usage:")[1].split()[len(path) + 1 :]:
        assert word in ("[OPTIONS]", "COMMAND", "[ARGS]...") or re.fullmatch(r"\[?[A-Z_]+\]?", word), usage


def test_run_help_says_it_runs_game_days_too() -> None:
    text = " ".join(help_of(("run",)).split())
    assert "Start a drill, or a game day," in text and "or a game-day file" in text


@pytest.mark.parametrize("path", EVERY_COMMAND, ids=lambda p: " ".join(("gameday", *p)))
def test_every_help_is_its_stored_snapshot(path: tuple[str, ...]) -> None:
    """A help text changes only on purpose: regenerate with GAMEDAY_REGENERATE_HELP=1 and review the diff."""
    text, stored = help_of(path), snapshot_file(path)
    if os.environ.get(REGENERATE):
        stored.parent.mkdir(exist_ok=True)
        stored.write_text(text)
    assert stored.exists(), f"no snapshot {stored.name}: run with {REGENERATE}=1 to write it"
    assert text == stored.read_text(), f"{stored.name} differs: run with {REGENERATE}=1 and review the diff"


def test_every_snapshot_belongs_to_a_command() -> None:
    assert {p.name for p in SNAPSHOTS.glob("*.txt")} == {snapshot_file(path).name for path in EVERY_COMMAND}


def test_version_prints_the_installed_version_and_exits_0() -> None:
    from importlib.metadata import version

    result = gameday("--version")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"gameday {version('gameday')}"


# --- output as written ------------------------------------------------------------------------------------


def test_validate_prints_durations_as_a_drill_file_writes_them(tmp_path: Path) -> None:
    drill = tmp_path / "drill.yaml"
    drill.write_text("name: short\nmax_duration: 5m\nhypothesis:\n  - {name: ok, command: {run: 'true'}}\n")

    result = gameday("validate", str(drill))

    assert result.exit_code == 0, result.output
    assert "max_duration 5m" in result.stdout and "0:05:00" not in result.stdout


def test_history_prints_run_ids_whole_on_an_80_column_terminal_as_list_does(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'results.db'}"
    run_id = "drill-checkout-db-outage-with-a-long-name-20261123T140000Z-attempt-2"
    Store(url).save(make_record(run_id, drill="checkout-db-outage", started_at=datetime.now(UTC)))

    for command in (["history", "checkout-db-outage"], ["list"]):
        result = gameday(*command, GAMEDAY_DATABASE_URL=url, COLUMNS="80", TERMINAL_WIDTH="80")
        assert result.exit_code == 0, result.output
        assert run_id in result.stdout.split(), command


def test_the_worker_logs_no_alembic_lines_when_it_starts(tmp_path: Path) -> None:
    """The schema check at start is silent; what the worker then says about Temporal is one line."""
    env = {
        **os.environ,
        "GAMEDAY_DATA_DIR": str(tmp_path),
        "GAMEDAY_DATABASE_URL": f"sqlite:///{tmp_path / 'results.db'}",
        "GAMEDAY_TEMPORAL_ADDRESS": "127.0.0.1:1",  # nothing listens: the worker stops after its schema check
    }
    done = subprocess.run(
        [installed_binary("gameday"), "worker"], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 1, done.stdout + done.stderr
    assert "schema upgraded" in done.stderr  # the check ran
    assert "alembic" not in (done.stdout + done.stderr).lower()
    assert "cannot reach Temporal at 127.0.0.1:1" in done.stderr
