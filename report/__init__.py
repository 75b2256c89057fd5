"""Reports: a run's or a game day's record rendered for people and tools. Pure functions of the records (no I/O,
no Temporal); the CLI (``gameday report``, ``status``, ``run``) and the notifications call them.

Public interface (what other rooms import):

* :mod:`~gameday.report.run`: ``render(record, fmt)`` for ``FORMATS`` (md, html, json, junit), ``render_markdown``,
  ``render_json``/``read_json`` (the stable JSON of a run), ``render_traffic_live`` (``gameday status``'s traffic
  lines), ``time_to_safe_words``/``stop_handled``/``coverage_line`` (shared by the HTML sections).
* :mod:`~gameday.report.html`: ``render_html``, and ``page``/``drill_sections`` that the game-day page reuses.
* :mod:`~gameday.report.junit`: ``render_junit``, ``render_gameday_junit`` (JUnit XML for CI: a ``<testsuites>``
  root, one ``<testsuite>`` per drill, a ``<testcase>`` per check), ``drill_cases``.
* :mod:`~gameday.report.gameday`: ``render_gameday_html``, ``render_gameday_json``, ``anchor``.
* :mod:`~gameday.report.chart`, :mod:`~gameday.report.sections`, :mod:`~gameday.report.expect`: the HTML chart,
  the HTML tables and the ``observe.expect`` lines, used by the modules above.
* :mod:`~gameday.report.words`: how times, durations and shares are written, shared by all of them.

No module imports another's ``_private`` helper: what is shared is public, in :mod:`~gameday.report.words`.
The resilience score the reports show is computed by the model (issue 13), not here.
"""
