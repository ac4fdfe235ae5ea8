"""The splat viewer's compute side: load a splat file, frame it, render a fallback JPEG, serve.

- :mod:`~pipeline.view.loading`: ``.ply`` / ``.splat`` files → :class:`~pipeline.splats.Splats`
  plus the up vector the header records.
- :mod:`~pipeline.view.camera`: the first view (the preview orbit's first pose) and the
  yaw / pitch / distance poses around the subject that the fallback renderer takes.
- :mod:`~pipeline.view.fallback`: a JPEG of a splat from one of those poses (thin clients).
- :mod:`~pipeline.view.files`: serving files with Range, ETag and content types.
- :mod:`~pipeline.view.page`: the browser page and its vendored SparkJS / three.js files.
- :mod:`~pipeline.view.server`: ``python -m pipeline view FILE``.
"""
