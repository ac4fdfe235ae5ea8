"""``python -m demo`` (``make demo``): one whole job, end to end, on loopback only."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path

from demo.config import DemoConfig
from demo.run import run_demo

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    defaults = DemoConfig()
    description = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m demo", description=description)
    parser.add_argument("--output", type=Path, default=defaults.output)
    parser.add_argument("--steps", type=int, default=defaults.steps, help="training steps")
    parser.add_argument("--views", type=int, default=defaults.views, help="frames of the scan")
    parser.add_argument("--size", default=defaults.size, help="frame size WxH")
    parser.add_argument("--threads", type=int, default=None, help="pipeline CPU threads")
    parser.add_argument(
        "--no-previews", dest="previews", action="store_false", help="skip the preview renders"
    )
    parser.add_argument("--timeout", type=float, default=defaults.timeout_s, help="seconds")
    parser.add_argument("--keep-work", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--serve",
        action="store_true",
        help="after the job, keep the node up so its viewer can be opened (Ctrl-C stops)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = DemoConfig(
        output=args.output,
        steps=args.steps,
        views=args.views,
        size=args.size,
        threads=args.threads,
        previews=args.previews,
        timeout_s=args.timeout,
        keep_work=args.keep_work,
        serve=args.serve,
    )
    try:
        return asyncio.run(run_demo(config))
    except KeyboardInterrupt:
        return 0 if config.serve else 130  # Ctrl-C is how --serve ends


if __name__ == "__main__":
    raise SystemExit(main())
