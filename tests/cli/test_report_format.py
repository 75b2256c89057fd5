"""``gameday report RUN_ID --format md|html|json [-o FILE]`` on a run recorded in a SQLite results database.

No Temporal server is needed: ``report`` reads the results database only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gameday.activities.store import Store
from gameday.cli.main import app
from gameday.model.records import RunRecord
from gameday.report.run import read_json
from tests.activities.test_report_html import drill_with_traffic

UI_URL = "http://temporal-ui.test:8233"


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[dict[str, str], RunRecord]:
    """A stopped drill with traffic saved in a new SQLite database, and the environment pointing at it."""
    url = f"sqlite:///{tmp_path / 'results.db'}"
    record = drill_with_traffic()
    Store(url).save(record)
    return {"GAMEDAY_DATABASE_URL": url, "GAMEDAY_UI_URL": UI_URL, "COLUMNS": "300"}, record


def report(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, ["report", *args], env=env)


def test_html_goes_to_the_file_named_by_output_and_the_command_says_where(
    recorded: tuple[dict[str, str], RunRecord], tmp_path: Path
) -> None:
    env, record = recorded
    target = tmp_path / "out" / "report.html"
    target.parent.mkdir()

    result = report(env, record.run_id, "--format", "html", "-o", str(target))

    assert result.exit_code == 0, result.output
    assert str(target.resolve()) in result.stdout and "<html" not in result.stdout
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert 'id="verdict"' in page and ">ABORTED<" in page
    assert f'href="{UI_URL}/namespaces/default/workflows/{record.run_id}"' in page


def test_without_output_html_is_printed(recorded: tuple[dict[str, str], RunRecord]) -> None:
    env, record = recorded

    result = report(env, record.run_id, "-f", "html")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("<!DOCTYPE html>") and result.stdout.rstrip().endswith("</html>")


def test_markdown_and_json_still_print_and_also_write_to_a_file(
    recorded: tuple[dict[str, str], RunRecord], tmp_path: Path
) -> None:
    env, record = recorded

    markdown = report(env, record.run_id)
    assert markdown.exit_code == 0 and markdown.stdout.startswith(f"# Drill `{record.drill_name}`: ABORTED")
    as_json = tmp_path / "record.json"
    written = report(env, record.run_id, "--format", "json", "--output", str(as_json))
    assert written.exit_code == 0, written.output
    assert read_json(as_json.read_text()) == Store(env["GAMEDAY_DATABASE_URL"]).get(record.run_id)
    as_md = tmp_path / "report.md"
    assert report(env, record.run_id, "-o", str(as_md)).exit_code == 0
    assert as_md.read_text() == markdown.stdout.rstrip("\n") + "\n"  # print() adds a blank line, the file not


def test_an_unknown_format_or_an_unwritable_file_exits_1_with_one_line(
    recorded: tuple[dict[str, str], RunRecord], tmp_path: Path
) -> None:
    env, record = recorded

    pdf = report(env, record.run_id, "--format", "pdf")
    assert pdf.exit_code == 1 and "pdf" in pdf.stderr and "html" in pdf.stderr
    nowhere = report(env, record.run_id, "-f", "html", "-o", str(tmp_path / "missing" / "r.html"))
    assert nowhere.exit_code == 1 and "cannot write" in nowhere.stderr
