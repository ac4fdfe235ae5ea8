"""Subcommands of ``python -m pipeline`` (see :mod:`pipeline.cli`)."""
