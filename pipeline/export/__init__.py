"""Step 4: export trained splats as 3DGS PLY and ``.splat`` files in the reference's frames.

- :mod:`~pipeline.export.outputs`: :func:`export_all`, the step the ``run`` orchestrator calls.
- :mod:`~pipeline.export.ply`: PLY writer and tolerant reader.
- :mod:`~pipeline.export.splat_format`: the 32-byte ``.splat`` records (ply2splat's bytes).
- :mod:`~pipeline.export.rotate`, :mod:`~pipeline.export.sh_rotation`: frame changes.
"""

from pipeline.export.outputs import ExportConfig, ExportResult, export_all, filter_for_export
from pipeline.export.ply import PlySplats, read_ply, write_ply
from pipeline.export.splat_format import encode_splat, read_splat, write_splat

__all__ = [
    "ExportConfig",
    "ExportResult",
    "PlySplats",
    "encode_splat",
    "export_all",
    "filter_for_export",
    "read_ply",
    "read_splat",
    "write_ply",
    "write_splat",
]
