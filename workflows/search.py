"""The custom search attributes a drill carries in Temporal, so the Web UI and ``gameday list --temporal`` can
find drills by name, team, environment and verdict.

Registered by ``gameday dev`` (the embedded dev server) and by the tests; on a cluster, once per namespace::

    temporal operator search-attribute create --namespace default \\
        --name DrillName --type Keyword --name DrillTeam --type Keyword \\
        --name DrillEnvironment --type Keyword --name DrillVerdict --type Keyword

A drill started where they are not registered runs without them (``gameday run`` says so); the workflow only
updates ``DrillVerdict`` on runs that were started with them, since upserting an unknown attribute would fail
its workflow task.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

DRILL_NAME = SearchAttributeKey.for_keyword("DrillName")
TEAM = SearchAttributeKey.for_keyword("DrillTeam")
ENVIRONMENT = SearchAttributeKey.for_keyword("DrillEnvironment")
VERDICT = SearchAttributeKey.for_keyword("DrillVerdict")

ALL = (DRILL_NAME, TEAM, ENVIRONMENT, VERDICT)


def at_start(name: str, team: str, environment: str) -> TypedSearchAttributes:
    """What every workflow gameday starts carries (a drill, a scheduled run, a game day and its drills).

    ``DrillVerdict`` is set at the end, by the workflow itself. An empty team is ``-``, so that ``--team`` filters
    and the Web UI show an explicit "no team" rather than a missing value.
    """
    return TypedSearchAttributes(
        [
            SearchAttributePair(DRILL_NAME, name),
            SearchAttributePair(TEAM, team or "-"),
            SearchAttributePair(ENVIRONMENT, environment),
        ]
    )


def dev_server_flags() -> list[str]:
    """``--search-attribute`` values for ``temporal server start-dev``: ``Name=Keyword`` each."""
    return [f"{key.name}=Keyword" for key in ALL]
