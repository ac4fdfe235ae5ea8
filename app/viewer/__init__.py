"""The node's side of the browser viewer (the page itself lives in :mod:`pipeline.view`).

- :mod:`~app.viewer.outputs`: where a job's files are (its folder while it runs, a kept copy
  under the data dir for ``OUTPUT_RETENTION_HOURS`` after it succeeded) and which names exist.
- :mod:`~app.viewer.auth`: the job routes' bearer rule for browsers (``?token=`` once → an
  HttpOnly cookie; loopback when no token is configured).
- :mod:`~app.viewer.scenes`: the scene JSON, first camera and fallback renderer of a job.
- :mod:`~app.viewer.events`: ``GET /jobs/{id}/events`` as Server-Sent Events.
"""
