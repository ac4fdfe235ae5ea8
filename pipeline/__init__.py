"""Pure compute for splatter-node: frames, COLMAP, dataset, renderers, trainer, export, preview.

No HTTP and no asyncio live here. The node drives this package only through its command line,
``python -m pipeline``, in a child process.
"""

__all__: list[str] = []
