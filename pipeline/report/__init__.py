"""The quality report of a run: ``report.json``, ``report.html`` and its pictures.

::

    write_report(out_dir, ReportInputs(scene, trained, config, rasterizer, inputs, loss, outputs))

Modules: :mod:`~.metrics` (per-view PSNR/SSIM, flat baseline), :mod:`~.images` (comparison
strips, error maps, loss curve), :mod:`~.write` (the files).
"""

from pipeline.report.write import MAX_LOSS_POINTS, REPORT_FILES, ReportInputs, write_report

__all__ = ["MAX_LOSS_POINTS", "REPORT_FILES", "ReportInputs", "write_report"]
