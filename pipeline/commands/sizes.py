"""``WxH`` command-line arguments, read by :func:`pipeline.contract.parse_size`."""

from __future__ import annotations

import argparse

from pipeline.contract import parse_size

__all__ = ["size_argument"]


def size_argument(text: str) -> tuple[int, int]:
    """An argparse ``type``: ``"1280x720"`` → ``(1280, 720)`` pixels.

    Raises:
        argparse.ArgumentTypeError: with :func:`parse_size`'s message.
    """
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
