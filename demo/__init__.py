"""``python -m demo`` (``make demo``): one whole job, end to end, on loopback only.

1. Start the DDS / DMS / domain-server emulator on a free 127.0.0.1 port.
2. Make a small synthetic scene (``python -m pipeline synthetic``): a recording, its refined
   COLMAP model and manifest.
3. Upload it to the emulated domain server exactly as the reconstruction server leaves it
   (protocol §3.11): ``dmt_recording_<scan>`` (``dmt_recording_mp4``),
   ``colmap_{cameras,frames,images,points3d,rigs}_bin_<ts>`` (data type = the prefix) and
   ``refined_manifest_<ts>`` (``refined_manifest_json``, ``dataIDs`` = refined scan names).
4. Create a job (``POST {DMS}/jobs`` with the app token) whose input CID is the manifest's
   domain data URL.
5. Start the node (``python -m app``, a separate process) in lease mode against the emulator;
   it registers, logs in, leases the task, heartbeats, trains, uploads and completes it.
6. Show the progress DMS receives, then download the uploaded artifacts into ``demo-output/``
   and print them with the receipt.

A development tool beside ``bench/`` and ``emulator/``: not part of the wheel. Modules:
:mod:`demo.scene` (steps 2-4), :mod:`demo.processes` (step 5), :mod:`demo.display` (what it
prints), :mod:`demo.run` (the whole run), :mod:`demo.__main__` (the command line).
"""

from demo.config import DemoConfig
from demo.display import describe, describe_metrics
from demo.processes import free_port, running_node, stop_process
from demo.run import run_demo
from demo.scene import SeededScene, make_scene, scene_items, seed_scene

__all__ = [
    "DemoConfig", "SeededScene", "describe", "describe_metrics", "free_port", "make_scene",
    "run_demo", "running_node", "scene_items", "seed_scene", "stop_process",
]  # fmt: skip
