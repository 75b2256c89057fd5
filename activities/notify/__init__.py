"""Telling people: Slack and webhook notifications as a drill goes (``activities.py``), and the alert for what
must not wait, a fault NOT REVERTED (``alert.py``)."""
