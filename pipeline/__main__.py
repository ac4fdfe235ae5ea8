import os

# Idle OpenMP workers must sleep, not spin: the pipeline shares 2 cores with the node's server,
# and spinning torch threads made small ops 10-30x slower on a busy machine. Set before torch
# is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pipeline.cli import main

raise SystemExit(main())
