"""The ``alert`` activity: a fault could not be reverted, so someone must act now.

Always logged at CRITICAL on the worker; also POSTed as JSON to ``GAMEDAY_ALERT_WEBHOOK`` when the worker has
one (a pager or chat webhook). The URL is worker configuration, often a secret: it never enters workflow inputs,
history or SQL, and is never logged.
"""

from __future__ import annotations

import logging

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from gameday.model.records import AlertInput

log = logging.getLogger("gameday.alert")

WEBHOOK_TIMEOUT = 10.0
"""Seconds one POST may take; the workflow's retry policy decides how often it is tried."""


class AlertActivities:
    """``alert``, bound to the worker's webhook and Web UI address.

    Args:
        webhook_url: where to POST the alert; empty for log only.
        ui_url: the Temporal Web UI base, for a link to the run.
        namespace: the Temporal namespace of the runs.
    """

    def __init__(self, webhook_url: str = "", ui_url: str = "", namespace: str = "default") -> None:
        self._webhook_url = webhook_url
        self._ui_url = ui_url.rstrip("/")
        self._namespace = namespace

    @activity.defn(name="alert")
    async def alert(self, inp: AlertInput) -> None:
        """Log the alert at CRITICAL and POST it to the webhook, if any.

        Raises:
            ApplicationError: ``AlertFailed`` (retryable) when the webhook did not answer 2xx.
        """
        labels = ", ".join(f.label for f in inp.faults)
        log.critical("%s: run %s (drill %s): %s: %s", inp.event, inp.run_id, inp.drill_name, inp.summary, labels)
        if not self._webhook_url:
            return
        payload = {
            **inp.model_dump(mode="json"),
            "text": f":rotating_light: {inp.summary}: {labels} (run {inp.run_id}, drill {inp.drill_name})",
            "url": f"{self._ui_url}/namespaces/{self._namespace}/workflows/{inp.run_id}" if self._ui_url else "",
        }
        try:
            async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT) as client:
                response = await client.post(self._webhook_url, json=payload)
        except httpx.HTTPError as err:
            # The URL may carry a token: say what failed, not where.
            raise ApplicationError(f"alert webhook unreachable: {type(err).__name__}", type="AlertFailed") from None
        if not response.is_success:
            raise ApplicationError(f"alert webhook answered {response.status_code}", type="AlertFailed")
