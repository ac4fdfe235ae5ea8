"""The environment of every process that handles untrusted job data: an explicit allow-list.

The node holds a wallet key (``SECP256K1_PRIVHEX``), its registration secret (``REG_SECRET``) and
the API token (``SPLATTER_API_TOKEN``). The processes that parse domain data — the pipeline child,
``ffmpeg`` decoding an uploaded MP4, ``ns-train`` / ``ns-export`` — must never see them, not even
in ``/proc/<pid>/environ``. So a child never inherits the node's environment: it gets only what
this module lets through:

- the names in :data:`ALLOWED_NAMES` (``PATH``, ``HOME``, ``LANG``, ``TMPDIR``, ...);
- names starting with one of :data:`ALLOWED_PREFIXES` (``LC_*``, thread / numba / torch / CUDA
  knobs, ``SPLATTER_*`` pipeline knobs);
- the names an operator lists in ``SPLATTER_CHILD_ENV`` (comma or space separated);

and never a name that looks like a credential (:func:`is_secret_name`), nor any variable whose
value equals a configured secret's value (a copy under an innocent name).

``python -m pipeline`` also applies the list to its own ``os.environ`` at start
(:func:`scrub_own_environment`), so whatever started it, its tools inherit nothing else. This
module imports nothing heavy: the node imports it to build the child's environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

__all__ = [
    "ALLOWED_NAMES",
    "ALLOWED_PREFIXES",
    "EXTRA_NAMES_VARIABLE",
    "SECRET_VARIABLES",
    "child_environment",
    "is_secret_name",
    "scrub_own_environment",
]

SECRET_VARIABLES = ("REG_SECRET", "SECP256K1_PRIVHEX", "SPLATTER_API_TOKEN")
"""The node's own secrets: never in a child's environment, nor any copy of their values."""

EXTRA_NAMES_VARIABLE = "SPLATTER_CHILD_ENV"
"""Operator's list of further variable names the pipeline and its tools receive."""

ALLOWED_NAMES = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ",
        "TMPDIR", "TEMP", "TMP",
        "PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE",
        "VIRTUAL_ENV", "LD_LIBRARY_PATH",
        "XDG_CACHE_HOME", "MPLCONFIGDIR",
        "IMAGEIO_FFMPEG_EXE",
        "SSL_CERT_FILE", "SSL_CERT_DIR",
    }
)  # fmt: skip
"""Variables a child receives by exact name."""

ALLOWED_PREFIXES = (
    "LC_",  # locale
    "OMP_", "MKL_", "OPENBLAS_", "KMP_", "GOMP_",  # CPU thread pools
    "NUMBA_", "TORCH_", "PYTORCH_",  # numba / torch knobs and caches
    "CUDA_", "NVIDIA_", "CUBLAS_", "CUDNN_", "NCCL_",  # GPU selection and libraries
    "SPLATTER_",  # the pipeline's own knobs (credential-looking names are still refused)
)  # fmt: skip
"""Variables a child receives by name prefix."""

_SECRET_WORDS = re.compile(r"SECRET|TOKEN|PRIV|PASSWORD|PASSWD|CREDENTIAL|(^|_)KEY($|_)")


def is_secret_name(name: str) -> bool:
    """True for a name that looks like a credential (``*_TOKEN``, ``*SECRET*``, ``*_KEY``...)."""
    return name.upper() in SECRET_VARIABLES or _SECRET_WORDS.search(name.upper()) is not None


def child_environment(
    extra: Mapping[str, str] | None = None, *, source: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The allow-listed part of ``source`` (default: this process's environment), plus ``extra``.

    ``extra`` is set on top, except a credential-looking name or a secret's value, which are
    refused like any other variable.
    """
    source = os.environ if source is None else source
    secrets = {source[name] for name in SECRET_VARIABLES if source.get(name)}
    wanted = _operator_names(source)
    env = {
        name: value
        for name, value in source.items()
        if (_allowed(name) or name in wanted) and _harmless(name, value, secrets)
    }
    env.update({k: v for k, v in (extra or {}).items() if _harmless(k, v, secrets)})
    return env


def scrub_own_environment() -> list[str]:
    """Removes from ``os.environ`` every variable :func:`child_environment` would not pass on.

    Returns the removed names (for a debug log); call it before starting any tool.
    """
    keep = child_environment()
    removed = [name for name in os.environ if name not in keep]
    for name in removed:
        del os.environ[name]
    return removed


def _allowed(name: str) -> bool:
    return name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES)


def _harmless(name: str, value: str, secrets: set[str]) -> bool:
    return not is_secret_name(name) and value not in secrets


def _operator_names(source: Mapping[str, str]) -> set[str]:
    return set(re.split(r"[\s,]+", source.get(EXTRA_NAMES_VARIABLE, "").strip())) - {""}
