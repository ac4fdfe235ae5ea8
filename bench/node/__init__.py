"""Support for ``bench_node``: a training-like load child and a node on a local domain."""
