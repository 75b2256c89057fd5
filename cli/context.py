"""What every command shares: the resolved configuration, a console, and one way to fail."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from gameday.config.app import GamedayConfig

T = TypeVar("T")

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass(frozen=True)
class Settings:
    config: GamedayConfig
    debug: bool = False

    @classmethod
    def build(
        cls,
        *,
        address: str | None,
        namespace: str | None,
        task_queue: str | None,
        data_dir: Path | None,
        database_url: str | None,
        debug: bool,
    ) -> Settings:
        config = GamedayConfig.from_env().with_overrides(
            temporal_address=address,
            namespace=namespace,
            task_queue=task_queue,
            data_dir=data_dir,
            database_url=database_url,
        )
        return cls(config=config, debug=debug)


def settings_of(ctx: typer.Context) -> Settings:
    obj = ctx.obj
    if isinstance(obj, Settings):
        return obj
    return Settings(config=GamedayConfig.from_env())


def print_columns(rows: Sequence[Sequence[str]]) -> None:
    """A header row (bold) and its rows in plain aligned columns, never cropped nor wrapped, whatever the width.

    Run ids and names are user text: printed verbatim, never as markup.
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        console.print(f"[bold]{escape(line)}[/]" if n == 0 else line, markup=n == 0)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear line and exit non-zero: the way user errors end."""
    err_console.print(f"[bold red]error:[/] {escape(message)}")  # messages quote user input: never markup
    raise typer.Exit(code=code)


def run_async(settings: Settings, coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; known failures become one line unless --debug."""
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(code=130) from None
    except typer.Exit:
        raise
    except Exception as err:
        if settings.debug:
            raise
        fail(_explain(err, settings))


def _explain(err: Exception, settings: Settings) -> str:
    from temporalio.service import RPCError, RPCStatusCode

    unreachable = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED}

    from gameday.model.errors import GamedayError

    if isinstance(err, GamedayError):
        return str(err)
    if isinstance(err, RPCError) and err.status not in unreachable:
        # The server answered, and said no (an unknown namespace, a payload over its limit, a permission…).
        return f"Temporal refused the request: {err.status.name}: {err.message or err}"
    if isinstance(err, RPCError) or "connect" in str(err).lower():
        return (
            f"cannot reach Temporal at {settings.config.temporal_address} ({err}). "
            "Start one with 'gameday dev', or set GAMEDAY_TEMPORAL_ADDRESS."
        )
    print(f"{type(err).__name__}: {err}", file=sys.stderr)
    return "unexpected failure (run with --debug for the traceback)"
