"""The shape every ``gameday`` command shares: help that reads like one tool, and one exit code for usage errors.

Typer builds each command from :class:`GamedayTyper` (the app and its ``db`` and ``schedule`` groups), so a command
added with ``app.command()`` gets this shape without asking:

- a flag is shown as a flag (``--wait``), never with a value type (``--wait <bool>`` invites ``--wait true``);
- an argument is named in capitals in the usage line and the arguments panel (``FILE``, ``RUN_ID``), like the help
  texts write them, and never in braces;
- a help paragraph is one flowing paragraph: the line breaks of the docstring are not kept (Typer keeps them in
  rich mode), and each ``Example:`` starts a line of its own;
- a usage error (an unknown option, a missing argument, a bad value) exits :data:`USAGE_ERROR`, 1, as README says,
  not click's 2, which is the exit code of the ``DEVIATED`` verdict.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import typer

# typer 0.29 vendors click and re-exports none of these.
from typer._click.core import Context
from typer._click.exceptions import UsageError
from typer._click.formatting import HelpFormatter
from typer.core import TyperArgument, TyperCommand, TyperGroup

USAGE_ERROR = 1
"""Exit code of a command used wrongly: the same as any other user error (a bad file, an unknown run id)."""

_EXAMPLE = re.compile(r"\s+(?=Examples?: )")


def flowing(text: str | None) -> str | None:
    """A docstring's help as Typer should show it: paragraphs joined into lines, ``Example:`` lines on their own."""
    if not text:
        return text
    paragraphs = []
    for paragraph in text.strip().split("\n\n"):
        if paragraph.startswith("\b"):  # click's "do not rewrap" marker: kept as written
            paragraphs.append(paragraph)
            continue
        parts = _EXAMPLE.split(paragraph.strip())
        paragraphs.extend(" ".join(line.strip() for line in part.splitlines()) for part in parts)
    return "\n\n".join(paragraphs)


def _polish(command: TyperCommand | TyperGroup) -> None:
    command.help = flowing(command.help)
    for param in command.params:
        if isinstance(param, TyperArgument):
            if param.metavar is None and param.name:
                param.metavar = param.name.upper()
        elif getattr(param, "is_flag", False) and not getattr(param, "count", False):
            param.metavar = ""  # shown with no value type: a flag takes no value


def _usage_pieces(command: TyperCommand | TyperGroup, ctx: Context) -> list[str]:
    """``[OPTIONS] FILE`` (``[RUN_ID]`` when optional), as every other command-line tool writes a usage line."""
    pieces = [command.options_metavar] if command.options_metavar else []
    for param in command.get_params(ctx):
        if isinstance(param, TyperArgument):
            name = param.metavar or (param.name or "").upper()
            name = name if param.required else f"[{name}]"
            pieces.append(name + ("..." if param.nargs != 1 else ""))
        else:
            pieces.extend(param.get_usage_pieces(ctx))
    return pieces


class GamedayCommand(TyperCommand):
    """A ``gameday`` command (see the module docstring for what it changes in its help)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _polish(self)

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        return _usage_pieces(self, ctx)

    def get_help_option(self, ctx: Context) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option


class GamedayGroup(TyperGroup):
    """The ``gameday`` app and its command groups: as :class:`GamedayCommand`, and usage errors exit 1."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _polish(self)

    def get_help_option(self, ctx: Context) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        _polish(self)  # again: Typer adds --install-completion and --show-completion after __init__
        super().format_help(ctx, formatter)

    def make_context(self, *args: Any, **kwargs: Any) -> Context:
        try:
            return super().make_context(*args, **kwargs)
        except UsageError as err:
            err.exit_code = USAGE_ERROR
            raise

    def invoke(self, ctx: Context) -> Any:
        # Sub-commands and sub-groups parse their arguments in here: one place sees every usage error.
        try:
            return super().invoke(ctx)
        except UsageError as err:
            err.exit_code = USAGE_ERROR
            raise


class GamedayTyper(typer.Typer):
    """``typer.Typer`` whose groups are :class:`GamedayGroup` and whose commands are :class:`GamedayCommand`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", GamedayGroup)
        super().__init__(**kwargs)

    def command(self, name: str | None = None, **kwargs: Any) -> Callable[[Any], Any]:
        kwargs.setdefault("cls", GamedayCommand)
        return super().command(name, **kwargs)
