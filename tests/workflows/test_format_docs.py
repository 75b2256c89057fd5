"""The users' references say what the loader does: docs/GAMEDAY_FORMAT.md's example loads as written, every key of
a drill or game-day file is documented, and docs/DRILL_FORMAT.md speaks to users (no internal paths or markers).
"""

from __future__ import annotations

import re
import typing
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel

from gameday.model.drill import Drill
from gameday.model.gameday import DrillStep, GameDaySpec, ParallelStep
from gameday.model.gameday_loader import is_gameday_text, load_gameday_file
from gameday.model.loader import parse_drill
from gameday.model.records import Verdict

DOCS = Path(__file__).parents[2] / "docs"


def doc_blocks(doc: str, section: str, fence: str) -> list[str]:
    """The ```fence blocks of one ``## section`` of a doc in docs/."""
    text = (DOCS / doc).read_text(encoding="utf-8").split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0] for block in text.split(f"```{fence}\n")[1:]]


def drill_file(name: str) -> str:
    return (
        f"name: {name}\nteam: payments\ntargets: {{api: {{process: {{pid: 4242}}}}}}\n"
        "hypothesis: [{name: up, tcp: {port: 8000}}]\nfaults: [{target: api, action: pause}]\n"
    )


def test_the_complete_example_of_the_gameday_doc_loads_as_written(tmp_path: Path) -> None:
    [example] = doc_blocks("GAMEDAY_FORMAT.md", "A complete example", "yaml")
    assert is_gameday_text(example)
    path = tmp_path / "checkout-q4.yaml"
    path.write_text(example, encoding="utf-8")
    # The drill files it names, each a small valid drill named after its file: the game day is the example.
    for name in re.findall(r"file: (\S+\.yaml)", example):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(drill_file(Path(name).stem), encoding="utf-8")

    spec, stages = load_gameday_file(path)

    assert spec.gameday == "checkout-q4" and spec.team == "payments"
    assert spec.approval is not None and spec.approval.timeout == timedelta(minutes=30)
    assert Verdict.DEVIATED in spec.stop_on
    assert [[planned.drill.name for planned in stage] for stage in stages] == [
        ["inventory-stall"],
        ["cache-restart", "search-latency"],
        ["db-failover"],
    ]
    drills = [planned.drill for stage in stages for planned in stage]
    assert [d.notify.slack.channel if d.notify and d.notify.slack else None for d in drills] == ["#gameday"] * 4
    assert [type(step) for step in spec.drills] == [DrillStep, ParallelStep, DrillStep]
    parallel = spec.drills[1]
    assert isinstance(parallel, ParallelStep)
    assert [member.file is not None for member in parallel.parallel] == [True, False]


def _models(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models(arg)]


def undocumented_keys(root: type[BaseModel], doc: str) -> list[str]:
    """Keys of ``root`` and of every model under it that the doc never writes as `key` (or `section.key`)."""
    text = (DOCS / doc).read_text(encoding="utf-8")
    missing: list[str] = []
    seen: set[type[BaseModel]] = set()

    def walk(model: type[BaseModel], path: str) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, info in model.model_fields.items():
            key = info.alias or name
            # `key`, `key: value` or `section.key`
            if not re.search(rf"`(?:[\w.]+\.)?{re.escape(key)}(?:`|:)", text):
                missing.append(f"{path}{key}")
            for inner in _models(info.annotation):
                walk(inner, f"{path}{key}.")

    walk(root, "")
    return missing


def test_every_key_of_a_drill_file_is_in_the_drill_format_doc() -> None:
    assert undocumented_keys(Drill, "DRILL_FORMAT.md") == []


def test_every_key_of_a_gameday_file_is_in_the_gameday_format_doc() -> None:
    missing = undocumented_keys(GameDaySpec, "GAMEDAY_FORMAT.md")
    # An inline drill and the shared notify are drill-file keys: DRILL_FORMAT.md documents them (test above).
    assert [key for key in missing if not key.startswith(("drills.drill.", "notify."))] == []


def test_the_drill_format_doc_is_written_for_users() -> None:
    text = (DOCS / "DRILL_FORMAT.md").read_text(encoding="utf-8")
    assert "<!--" not in text
    assert "PRODUCT.md" not in text
    assert re.findall(r"\b(?:workflows|activities|worker|cli)/[\w/]*(?:\.py)?", text) == []


def test_the_load_and_guardrails_example_of_the_drill_format_doc_loads() -> None:
    [example] = doc_blocks("DRILL_FORMAT.md", "A drill under load, with service levels and guardrails", "yaml")

    drill = parse_drill(example, "checkout-db-outage.yaml")

    assert drill.name == "checkout-db-outage"
    assert drill.observe.traffic is not None and drill.observe.expect is not None
    assert drill.observe.guardrails


def test_the_drill_format_doc_says_samples_are_per_check_and_the_observation_ticks_at_a_fixed_rate() -> None:
    text = " ".join((DOCS / "DRILL_FORMAT.md").read_text().split())

    assert "The observation does not use it: there a probe takes **one sample per tick**" in text
    assert "a **fixed rate**, one tick every interval from the window's start" in text
    assert "is *missed*, not run late, and counted in the record's coverage" in text
