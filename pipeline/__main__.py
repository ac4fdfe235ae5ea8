import os

from pipeline.environment import scrub_own_environment

# Whatever started this process, the tools it runs on untrusted data (ffmpeg, ns-train) inherit
# only the allow-listed environment: no node secret or token.
scrub_own_environment()

# Idle OpenMP workers must sleep, not spin: the pipeline shares 2 cores with the node's server,
# and spinning torch threads made small ops 10-30x slower on a busy machine. Set before torch
# is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pipeline.cli import main  # noqa: E402 (after the environment is scrubbed)

raise SystemExit(main())
