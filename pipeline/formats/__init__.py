"""Splat file formats without torch: PLY, ``.splat``, SOG and SPZ, read and written from numpy.

:mod:`pipeline.formats.registry` picks a format by file extension; ``python -m pipeline
convert`` uses only this package, so converting never imports torch.
"""

__all__: list[str] = []
