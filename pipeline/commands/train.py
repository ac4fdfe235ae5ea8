"""python -m pipeline train DATA --out DIR: train a splat from any capture.

DATA can be any of these (the kind is detected):

  COLMAP project    images/ plus a model in sparse/0/ or sparse/ (cameras, images and
                    points3D as .bin or .txt); image names may include sub-folders;
                    photos turned by their EXIF orientation tag are read upright.
  nerfstudio data   a folder with transforms.json (or the file itself), with the point
                    cloud in sparse_pc.ply or ply_file_path when there is one (otherwise
                    training starts from random points).
  photos            a folder of .jpg/.jpeg/.png photos with no poses: structure from
                    motion (pycolmap) finds them. Needs the optional extra:
                    pip install 'splatter-node[sfm]'
  videos            one video file, or a folder of videos, with no poses: the sharpest
                    frame of each stretch of video is kept (--frame-budget frames in all),
                    then structure from motion as for photos.
  Auki job folder   datasets/<scan>/Frames.mp4 plus refined/global/refined_sfm_combined/
                    (what "python -m pipeline run --job-root" trains).

DIR receives what "run" writes into refined/splatter/: splat.ply, splat_rot.ply,
splat_rot.splat, the previews, checkpoints/ and run_state.json (a rerun resumes), and for
photos and videos the reconstruction in sfm/.

Progress: a progress bar on a terminal; JSON lines on stdout when stdout is not a terminal
or with --json; nothing with --quiet. Exit codes: 0 success, 1 failure (the reason is the
last stderr line, "error: ..."), 2 bad arguments, 143 stopped by SIGTERM.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipeline.captures.sfm import SfmOptions
from pipeline.captures.train import train_capture
from pipeline.commands.run import add_training_options, execute, run_config

__all__ = ["add_parser"]

_SFM = SfmOptions()


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a splat from a COLMAP project, nerfstudio data, photos, videos or a job",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("data", type=Path, help="the capture: a folder or a video file")
    parser.add_argument("--out", type=Path, required=True, help="folder for the outputs (required)")
    add_training_options(parser)
    parser.add_argument(
        "--frame-budget",
        type=int,
        default=_SFM.frame_budget,
        help="videos: frames kept for structure from motion, all videos together "
        "(default: %(default)s)",
    )
    parser.set_defaults(func=train_command)


def train_command(args: argparse.Namespace) -> int:
    config = run_config(args)
    sfm = SfmOptions(frame_budget=max(3, args.frame_budget))
    return execute(
        lambda tracker, stop: train_capture(args.data, args.out, config, tracker, sfm, stop), args
    )
