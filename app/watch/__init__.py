"""The watch door: captures dropped into ``WATCH_DIR/inbox/`` become jobs of the one job store.

::

    WATCH_DIR/
        inbox/        drop a capture folder or a video here (names starting with "." are ignored)
        outbox/       <name>_<UTC timestamp>/   every output of a successful job
        processed/    <name>_<UTC timestamp>    the input of a successful job
        error/        <name>_<UTC timestamp>/   the input that failed, and error.txt
"""

from app.watch.door import WatchDoor

__all__ = ["WatchDoor"]
