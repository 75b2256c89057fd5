"""``load_file``: one entry from a path to a typed file, its kind recognised once (issue 13)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gameday.cli.main import app
from gameday.model.errors import DrillFileError
from gameday.model.files import DrillFile, GameDayFile, load_file

DRILLS = Path(__file__).parent.parent / "drills"


def test_a_drill_file_loads_as_a_drill() -> None:
    loaded = load_file(DRILLS / "good" / "minimal.yaml")

    assert isinstance(loaded, DrillFile)
    assert loaded.drill.name and loaded.path == DRILLS / "good" / "minimal.yaml"


def test_a_game_day_file_loads_with_the_drills_it_names(tmp_path: Path) -> None:
    shutil.copy(DRILLS / "good" / "minimal.yaml", tmp_path / "first.yaml")
    (tmp_path / "day.yaml").write_text(
        "gameday: sprint\ndrills:\n  - file: first.yaml\n  - drill: {name: second, observe: {duration: 0s}}\n"
    )

    loaded = load_file(tmp_path / "day.yaml")

    assert isinstance(loaded, GameDayFile)
    assert loaded.spec.gameday == "sprint"
    assert [[p.drill.name for p in stage] for stage in loaded.stages] == [
        [load_file(tmp_path / "first.yaml").drill.name],  # type: ignore[union-attr]
        ["second"],
    ]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('name: x\ntargets: !!python/object/apply:os.system ["echo hi"]\n', "could not determine a constructor"),
        ("gameday: g\ndrills: !custom [1]\n", "could not determine a constructor for the tag '!custom'"),
        ("name: [unclosed\n", "invalid YAML"),
    ],
)
def test_bad_yaml_is_one_located_problem_never_a_traceback(tmp_path: Path, text: str, said: str) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(text)

    with pytest.raises(DrillFileError) as caught:
        load_file(file)
    result = CliRunner().invoke(app, ["validate", str(file)])

    assert said in str(caught.value.problems[0])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert said in result.output and "Traceback" not in result.output


def test_a_schedule_refuses_a_game_day_file(tmp_path: Path) -> None:
    (tmp_path / "day.yaml").write_text("gameday: g\ndrills:\n  - drill: {name: one, observe: {duration: 0s}}\n")

    result = CliRunner().invoke(app, ["schedule", "add", str(tmp_path / "day.yaml"), "--cron", "0 14 * * TUE"])

    assert result.exit_code == 1
    assert "a game-day file, not a drill file" in result.output
