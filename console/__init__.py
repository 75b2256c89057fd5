"""The web console (issue 18): ``gameday console``, a small server-rendered app over Temporal and the results DB.

Pages: Now (running drills and game days), Runs (history, reports, trends), Schedules, Approvals. Read-only by
default; actions (stop, approve, freeze, schedules) are enabled per deployment (``GAMEDAY_CONSOLE_ACTIONS``) for
people who sign in (``GAMEDAY_CONSOLE_USERS`` / ``GAMEDAY_CONSOLE_TOKEN``). See ``console/auth.py``.
"""
