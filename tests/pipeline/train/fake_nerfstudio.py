"""Fake ``ns-train`` and ``ns-export`` executables for the nerfstudio trainer's tests.

They behave like nerfstudio 1.1.5's tools where the pipeline can observe it: ``ns-train`` reads
``--data``/``transforms.json`` (every ``file_path`` resolved as ``data / file_path``, as the
dataparser does), prints its progress table in the local writer's format
(``nerfstudio/utils/writer.py``: ``<step> (<pct>%)`` padded to 20 characters, then the tracked
statistics, 21 characters each), writes ``config.yml`` into ``<output>/<experiment>/<method>/
<timestamp>`` and a checkpoint; ``ns-export gaussian-splat`` needs that ``config.yml`` and
writes ``splat.ply`` (nerfstudio's 62-float layout and header comments) from Gaussians the test
chose. Both append their argv to a record file. Standard library, numpy and plyfile only: no
torch import, so they start fast.

Knobs (environment): ``FAKE_NS_RECORD`` (JSON lines of ``{"tool", "argv"}``),
``FAKE_NS_SPLATS`` (``.npz`` with ``means quats log_scales logit_opacities sh`` in nerfstudio's
frame), ``FAKE_NS_TRAIN_EXIT`` / ``FAKE_NS_EXPORT_EXIT`` (fail with that status),
``FAKE_NS_EXPORT_OUTPUT`` (``none``: write nothing, ``garbage``: a file that is no PLY),
``FAKE_NS_TRAIN_HANG`` (a path: write ``<pid> <worker pid>`` there, then sleep; the worker is a
forked "data loader" in the same process group).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[3]
KNOBS = (
    "FAKE_NS_RECORD", "FAKE_NS_SPLATS", "FAKE_NS_TRAIN_EXIT", "FAKE_NS_EXPORT_EXIT",
    "FAKE_NS_EXPORT_OUTPUT", "FAKE_NS_TRAIN_HANG",
)  # fmt: skip
# The tools get only the allow-listed environment (pipeline.environment): the knobs pass through
# the operator's list of extra names.
PASS_KNOBS = {"SPLATTER_CHILD_ENV": " ".join(KNOBS)}
TOOLS = {"ns-train": "main_train", "ns-export": "main_export"}
# Options each part of the ns-train command accepts here; tyro rejects others (exit 2), e.g. a
# trainer option placed after the dataparser subcommand.
TRAIN_OPTIONS = {
    "--vis", "--logging.local-writer.max-log-size", "--logging.steps-per-log", "--data",
    "--experiment-name", "--method-name", "--timestamp", "--output-dir", "--max-num-iterations",
}  # fmt: skip
DATAPARSER_OPTIONS = {"--center-method", "--orientation-method", "--auto-scale-poses"}


def install(bin_dir: Path) -> None:
    """Write ``ns-train`` and ``ns-export`` launchers into ``bin_dir`` (this Python runs them)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool, function in TOOLS.items():
        path = bin_dir / tool
        path.write_text(
            f"#!{sys.executable}\n"
            "import sys\n"
            f"sys.path.insert(0, {str(PROJECT_ROOT)!r})\n"
            f"from tests.pipeline.train.fake_nerfstudio import {function}\n"
            f"sys.exit({function}(sys.argv[1:]))\n",
            encoding="utf-8",
        )
        path.chmod(0o755)


def save_splats(path: Path, **arrays: np.ndarray) -> None:
    """Store the Gaussians ``ns-export`` will write (``means [N,3]``, ``quats [N,4]``,
    ``log_scales [N,3]``, ``logit_opacities [N]``, ``sh [N,K,3]``)."""
    savez: Callable[..., None] = np.savez  # numpy's stub reads ** as its allow_pickle flag
    savez(path, **arrays)


def main_train(argv: Sequence[str]) -> int:
    _record("ns-train", argv)
    if argv[:1] != ["splatfacto"]:
        return _fail(f"unknown method {argv[:1]}", 2)
    method_args, _, parser_args = _split_at(list(argv[1:]), "nerfstudio-data")
    options = _options(method_args)
    unknown = (set(options) - TRAIN_OPTIONS) | (set(_options(parser_args)) - DATAPARSER_OPTIONS)
    if unknown:
        return _fail(f"error: unrecognized arguments: {sorted(unknown)}", 2)
    data = Path(options["--data"])
    frames = json.loads((data / "transforms.json").read_text(encoding="utf-8"))["frames"]
    for frame in frames:
        if not (data / frame["file_path"]).is_file():
            return _fail(f"FileNotFoundError: {data / frame['file_path']}", 1)
    print("[12:00:00] Saving config to: config.yml", flush=True)
    if "FAKE_NS_TRAIN_EXIT" in os.environ:
        print("Traceback (most recent call last):", file=sys.stderr)
        return _fail("RuntimeError: CUDA out of memory", int(os.environ["FAKE_NS_TRAIN_EXIT"]))
    run_dir = Path(
        f"{options['--output-dir']}/{options['--experiment-name']}/"
        f"{options['--method-name']}/{options['--timestamp']}"
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yml").write_text(f"data: {data}\nparser: {parser_args}\n", "utf-8")
    if "FAKE_NS_TRAIN_HANG" in os.environ:
        _hang(Path(os.environ["FAKE_NS_TRAIN_HANG"]))
    max_iter = int(options.get("--max-num-iterations", 30000))
    _print_table(max_iter, int(options["--logging.steps-per-log"]))
    models = run_dir / "nerfstudio_models"
    models.mkdir(exist_ok=True)
    (models / f"step-{max_iter - 1:09d}.ckpt").write_bytes(b"fake")
    print("Training Finished", flush=True)
    return 0


def main_export(argv: Sequence[str]) -> int:
    _record("ns-export", argv)
    if argv[:1] != ["gaussian-splat"]:
        return _fail(f"unknown export {argv[:1]}", 2)
    options = _options(argv[1:])
    if not Path(options["--load-config"]).is_file():
        return _fail(f"FileNotFoundError: {options['--load-config']}", 1)
    if "FAKE_NS_EXPORT_EXIT" in os.environ:
        return _fail("ValueError: export failed", int(os.environ["FAKE_NS_EXPORT_EXIT"]))
    out = Path(options["--output-dir"]) / "splat.ply"
    output = os.environ.get("FAKE_NS_EXPORT_OUTPUT", "ply")
    if output == "garbage":
        out.write_bytes(b"not a ply at all\n")
    elif output == "ply":
        _write_nerfstudio_ply(out, np.load(os.environ["FAKE_NS_SPLATS"]))
    print(f"Saved {out}", flush=True)
    return 0


def _print_table(max_iter: int, steps_per_log: int) -> None:
    """Rows as nerfstudio's LocalWriter prints them with ``max-log-size 0``: the header before
    the rows of steps up to ``steps_per_log``, then rows only."""
    names = ["Train Iter (time)", "ETA (time)", "Train Rays / Sec"]
    header = f"{'Step (% Done)':<20}" + "".join(f"{name:<20} " for name in names)
    for step in range(0, max_iter, steps_per_log):
        if step <= steps_per_log:
            print(header)
            print("-" * len(header))
        cells = ["41.342 ms", f"{(max_iter - step) // 60} m, {(max_iter - step) % 60} s", "1.12 M"]
        row = f"{f'{step} ({step / max_iter * 100:.02f}%)':<20}"
        print(row + "".join(f"{cell:<20} " for cell in cells), flush=True)


def _write_nerfstudio_ply(path: Path, splats: np.lib.npyio.NpzFile) -> None:
    import plyfile

    sh = splats["sh"].astype(np.float32)
    n, k = sh.shape[0], sh.shape[1]
    rest = sh[:, 1:, :].transpose(0, 2, 1).reshape(n, 3 * (k - 1))  # channel-major
    opacity = splats["logit_opacities"].reshape(n, 1)
    columns = [splats["means"], np.zeros((n, 3)), sh[:, 0, :], rest,
               opacity, splats["log_scales"], splats["quats"]]  # fmt: skip
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    names += [f"f_rest_{i}" for i in range(3 * (k - 1))]
    names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    values = np.concatenate([np.asarray(c, np.float32) for c in columns], axis=1)
    table = np.empty(n, dtype=[(name, "<f4") for name in names])
    for i, name in enumerate(names):
        table[name] = values[:, i]
    element = plyfile.PlyElement.describe(table, "vertex")
    comments = ["Generated by Nerstudio 1.1.5", "Vertical Axis: z"]
    plyfile.PlyData([element], byte_order="<", comments=comments).write(str(path))


def _hang(pid_file: Path) -> None:
    worker = os.fork()
    if worker == 0:  # the "data loader": same process group, sleeps too
        time.sleep(600)
        os._exit(0)
    pid_file.write_text(f"{os.getpid()} {worker}", encoding="utf-8")
    print("0 (0.00%)           ", flush=True)
    time.sleep(600)


def _options(args: Sequence[str]) -> dict[str, str]:
    if len(args) % 2:
        raise SystemExit(f"odd option list {args}")
    return dict(zip(args[::2], args[1::2], strict=True))


def _split_at(args: list[str], token: str) -> tuple[list[str], str, list[str]]:
    if token not in args:
        return args, "", []
    i = args.index(token)
    return args[:i], token, args[i + 1 :]


def _record(tool: str, argv: Sequence[str]) -> None:
    record = os.environ.get("FAKE_NS_RECORD")
    if record:
        with Path(record).open("a", encoding="utf-8") as f:
            f.write(json.dumps({"tool": tool, "argv": list(argv)}) + "\n")


def _fail(message: str, code: int) -> int:
    print(message, file=sys.stderr, flush=True)
    return code
