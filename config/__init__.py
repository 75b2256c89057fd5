"""The app's configuration: ``app.py`` (``GamedayConfig``, the ``GAMEDAY_*`` settings) and ``notify.py`` (Slack and
webhook credentials). Read by the worker, the CLI and the migrations; installed as ``gameday.config``."""
