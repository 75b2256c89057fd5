"""``gameday slack``: the Slack buttons and ``/gameday`` slash command (Socket Mode)."""

from __future__ import annotations

import logging

import typer

from gameday.cli.context import console, fail, run_async, settings_of


def register(app: typer.Typer) -> None:
    app.command(name="slack")(slack_listener)


def slack_listener(ctx: typer.Context) -> None:
    """Answer the Stop drill / Approve buttons of drill threads and /gameday stop|freeze|unfreeze|status in Slack.

    Connects out to Slack with Socket Mode (no public endpoint). Settings from the environment only:
    GAMEDAY_SLACK_APP_TOKEN (xapp-, connections:write), GAMEDAY_SLACK_TOKEN (the bot token), and who may press:
    GAMEDAY_SLACK_ALLOWED_USERS (user ids, comma-separated) and/or GAMEDAY_SLACK_ALLOWED_GROUP (a user group id).
    Workers show the buttons when they have GAMEDAY_SLACK_APP_TOKEN or GAMEDAY_SLACK_BUTTONS=1. 'gameday dev'
    starts this listener itself when GAMEDAY_SLACK_APP_TOKEN is set.
    """
    from gameday.config.slack_app import SlackAppConfig
    from gameday.worker.slack_app import run_slack_listener

    settings = settings_of(ctx)
    slack = SlackAppConfig.from_env()
    if problem := slack.problem():
        fail(problem)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console.print(
        f"Slack listener for task queue [bold]{settings.config.task_queue}[/] at {settings.config.temporal_address}"
    )
    run_async(settings, run_slack_listener(settings.config, slack))
