"""The node's configuration: one pydantic-settings ``Settings`` read from the environment.

Variable names follow the reference node where one exists (protocol §3.9: ``REG_SECRET``,
``SECP256K1_PRIVHEX``, ``DMS_BASE_URL``, ``TASKS_ROOT``, ``DISABLE_TASKS_CLEANUP``, ...); the
node's own additions are prefixed ``SPLATTER_`` or named for what they bound. Every field name is
its environment variable in lower case. Read it through :func:`get_settings` (cached), never a
module-level instance, so tests can build their own.

The lease-mode fields, their defaults and the rules of protocol §3.9 (URL forms, the
request-timeout range, ``NODE_VERSION`` and ``CLIENT_ID`` normalisation, the key's form) are
defined once, in ``domain_client.config.NodeConfig``, which ``Settings`` inherits: this is the
only parser of the environment, and :meth:`Settings.node_config` hands ``domain_client`` the
lease fields as a plain ``NodeConfig``.

Booleans follow the reference runner: ``1``, ``true``, ``yes``, ``on`` (any case) are true;
``0``, ``false``, ``no``, ``off`` are false; anything else is an error naming the variable.
Empty variables count as unset.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import sys
from collections.abc import MutableMapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app import PROJECT_ROOT, __version__
from app.targets import AllowedHosts
from domain_client.config import NodeConfig
from domain_client.throughput import DownloadRateLimit
from pipeline.contract import SECRET_VARIABLES, format_size, parse_size

__all__ = [
    "EnvBool",
    "Settings",
    "forget_secret_variables",
    "get_settings",
    "is_loopback_host",
    "parse_env_bool",
    "tasks_root_conflict",
]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_env_bool(value: object) -> bool:
    """Parses a boolean the way the reference runner does, but rejects unknown words."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected one of 1/true/yes/on or 0/false/no/off")


EnvBool = Annotated[bool, BeforeValidator(parse_env_bool)]


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (``127.0.0.0/8``, ``::1``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def tasks_root_conflict(tasks_root: Path, data_dir: Path) -> str | None:
    """Why ``TASKS_ROOT`` is unsafe, or ``None``: it must not contain the job store
    (``SPLATTER_DATA_DIR``), the working directory or the installed node, since job folders
    under it are deleted."""
    root = tasks_root.resolve()
    others = (
        ("SPLATTER_DATA_DIR", data_dir),
        ("the working directory", Path.cwd()),
        ("the node's installation", PROJECT_ROOT),
        ("the Python environment", Path(sys.prefix)),
    )
    for what, path in others:
        if path.resolve().is_relative_to(root):
            return (
                f"TASKS_ROOT ({root}) contains {what} ({path.resolve()}): job folders under "
                f"TASKS_ROOT are deleted; choose a TASKS_ROOT outside {what}"
            )
    return None


class Settings(NodeConfig, BaseSettings):
    """Everything the node reads from its environment (defaults in the field definitions).

    The lease-mode fields (``REG_SECRET`` ... ``CLIENT_ID``) and their validators come from
    :class:`~domain_client.config.NodeConfig`.
    """

    model_config = SettingsConfigDict(
        case_sensitive=False, env_ignore_empty=True, extra="ignore", frozen=True
    )

    # --- logging ---
    log_format: Literal["auto", "json", "text"] = "auto"
    """``auto``: readable text on a terminal, JSON lines otherwise (a pipe, a file, Docker)."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # --- jobs: workspace, pipeline child, limits ---
    tasks_root: Path = Path("tasks")
    """Parent of the job folders ``<TASKS_ROOT>/<task_id>`` (Docker: ``/app/tasks``)."""
    disable_tasks_cleanup: EnvBool = False
    """Keep job folders after a run and at start-up (debugging)."""
    splatter_data_dir: Path = Path("data")
    """Where the SQLite job store lives (``<dir>/jobs.sqlite3``); keep it out of TASKS_ROOT."""
    pipeline_command: str = ""
    """Command that starts the pipeline child (shell words); empty = this Python ``-m pipeline``.
    The node appends ``run --job-root DIR ...``."""
    splatter_iterations: int | None = Field(None, gt=0)
    """Training steps (``--steps``); unset = the pipeline's default."""
    splatter_backend: Literal["auto", "cpu", "gsplat"] = "auto"
    splatter_trainer: Literal["builtin", "nerfstudio"] = "builtin"
    """Trainer (``--trainer``): ``builtin``, or ``nerfstudio`` for the reference's own ``ns-train``
    / ``ns-export`` (GPU image only); with ``nerfstudio`` the backend only renders previews."""
    splatter_threads: int | None = Field(None, gt=0)
    """CPU threads of the pipeline child (``--threads``); unset = the pipeline's default."""
    splatter_previews: EnvBool = True
    """Render and upload the preview images and video (best effort)."""
    splatter_convert_to_sog: EnvBool = True
    """Write ``splat_rot.sog`` (PlayCanvas SOG: SH kept, ~10× smaller than the PLY) and upload
    it as ``splat_data_sog`` before the ``.splat``, best effort (off: ``--no-sog``)."""
    splatter_preview_size: str | None = None
    """Preview stills and video size ``WxH`` (``--preview-size``); unset = the pipeline's
    1280x720. Even numbers, at least 16."""
    splatter_preview_fps: float | None = Field(None, gt=0, le=120)
    """Preview video frame rate (``--preview-fps``; the orbit lasts 5 s); unset = 30."""
    pipeline_nice: int = Field(10, ge=0, le=19)
    """CPU niceness of the pipeline child: the service answers first when both want the CPU."""
    cancel_grace_secs: float = Field(10.0, ge=0)
    """Seconds between SIGTERM and SIGKILL to the pipeline's process group."""
    shutdown_drain_secs: float = Field(0.0, ge=0)
    """On SIGTERM, how long a running job may go on before it is cancelled (its folder is kept
    for a resume either way)."""
    job_timeout_secs: float | None = Field(None, gt=0)
    """Longest a job may run, downloads to last upload, in seconds; unset = 7200 with
    ``SPLATTER_BACKEND=cpu``, 14400 otherwise. Past it the job fails naming the limit."""
    min_download_bytes_per_sec: int = Field(64 * 1024, ge=0)
    """Slowest download tolerated, averaged over ``DOWNLOAD_RATE_WINDOW_SECS`` (0: no floor)."""
    download_rate_window_secs: float = Field(60.0, gt=0)
    """The window of ``MIN_DOWNLOAD_BYTES_PER_SEC``, in seconds."""
    resume_retention_hours: float = Field(24.0, ge=0)
    """How long the folder of an interrupted job is kept for a resume (0: not kept)."""
    min_free_disk_mb: int = Field(2048, ge=0)
    """Free space TASKS_ROOT must have before a job starts and while it downloads, in MiB."""
    splatter_max_manifest_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    """Largest input CID item read as the manifest, bytes (streamed; larger fails the job)."""
    splatter_max_data_ids: int = Field(10_000, ge=1)
    """Most ``dataIDs`` entries a manifest may list."""
    splatter_max_download_bytes: int = Field(16 * 1024**3, ge=1024)
    """Largest single recording or COLMAP binary downloaded, bytes."""
    progress_min_interval_secs: float = Field(2.0, ge=0)
    """Minimum seconds between two training progress updates (each one costs a heartbeat)."""
    splatter_snapshot_secs: float | None = Field(None, ge=0)
    """Seconds between two live training snapshots the viewer shows (``--snapshot-every``;
    0: none); unset = the pipeline's 10."""
    output_retention_hours: float = Field(24.0, ge=0)
    """How long a succeeded job's outputs stay viewable after its folder is removed (a copy
    under ``<SPLATTER_DATA_DIR>/outputs``); 0 keeps none."""

    # --- HTTP service ---
    splatter_host: str = "127.0.0.1"
    splatter_port: int = Field(8080, ge=0, le=65535)
    splatter_api_token: SecretStr | None = None
    """Bearer token that job routes require; mandatory on a non-loopback address."""
    splatter_allow_open: EnvBool = False
    """Allow a non-loopback address without SPLATTER_API_TOKEN (job routes open to anyone)."""
    splatter_max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    """Largest request body accepted (413 above it)."""
    splatter_access_log: EnvBool = False

    # --- the push door ---
    splatter_allowed_domain_hosts: str = ""
    """``host[:port]`` patterns (comma or space separated, ``*`` wildcards, ``[v6]`` literals)
    that a pushed ``domain_server_url`` / ``progress_url`` may name even when they resolve to a
    loopback, link-local or private address (:mod:`app.targets`); empty = public only."""
    token_wait_secs: float = Field(300.0, ge=0)
    """After a domain 401 in a push job, how long to wait for ``PUT /jobs/{id}/token``."""
    splatter_max_queued: int = Field(32, ge=1)
    """Queued push jobs beyond which ``POST`` answers 429 with ``Retry-After``."""
    job_retention_days: float = Field(30.0, ge=0)
    """Finished jobs older than this (by ``finished_at``) are deleted from the store; 0 = keep."""

    # --- the watch door ---
    watch_dir: Path | None = None
    """Folder with ``inbox/``, ``outbox/``, ``processed/``, ``error/``; unset = no watch door."""
    watch_stable_secs: float = Field(10.0, ge=0)
    """An inbox entry is queued once its sizes and mtimes stayed unchanged this long."""
    watch_polling: EnvBool = False
    """Poll the inbox instead of using inotify (network mounts that deliver no events)."""
    watch_max_attempts: int = Field(2, ge=1)
    """Runs of a failing input before it moves to ``error/``."""
    watch_retention_days: float = Field(30.0, ge=0)
    """Entries of ``processed/``, ``outbox/`` and ``error/`` older than this are deleted;
    0 = keep."""

    @classmethod
    def _fallback_version(cls) -> str:
        return __version__

    @field_validator("splatter_preview_size")
    @classmethod
    def _check_preview_size(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            sizes = parse_size(value)
        except ValueError:
            sizes = (0, 0)
        if any(n < 16 or n % 2 for n in sizes):
            raise ValueError("must be WIDTHxHEIGHT, even numbers of at least 16 (e.g. 640x360)")
        return format_size(*sizes)

    @field_validator("splatter_allowed_domain_hosts")
    @classmethod
    def _check_allowed_hosts(cls, value: str) -> str:
        AllowedHosts.parse(value)
        return value

    @field_validator("pipeline_command")
    @classmethod
    def _check_pipeline_command(cls, value: str) -> str:
        try:
            shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split into words: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _check_bind(self) -> Settings:
        if not is_loopback_host(self.splatter_host) and not self._job_routes_protected():
            raise ValueError(
                f"refusing to listen on non-loopback address {self.splatter_host!r} without "
                "SPLATTER_API_TOKEN; set SPLATTER_API_TOKEN, or SPLATTER_ALLOW_OPEN=1 to run open"
            )
        return self

    @model_validator(mode="after")
    def _check_tasks_root(self) -> Settings:
        problem = tasks_root_conflict(self.tasks_root, self.splatter_data_dir)
        if problem is not None:
            raise ValueError(problem)
        return self

    def _job_routes_protected(self) -> bool:
        return self.splatter_api_token is not None or self.splatter_allow_open

    @property
    def pipeline_argv(self) -> list[str]:
        """The command prefix of the pipeline child (before ``run --job-root ...``)."""
        words = shlex.split(self.pipeline_command)
        return words or [sys.executable, "-m", "pipeline"]

    def node_config(self) -> NodeConfig:
        """The lease-mode fields, for ``domain_client`` (``build_lease_node``).

        Raises:
            RuntimeError: lease mode is not configured (no ``REG_SECRET`` / key).
        """
        if not self.lease_mode:
            raise RuntimeError("lease mode needs REG_SECRET and SECP256K1_PRIVHEX")
        return self.lease_config()

    @property
    def allowed_domain_hosts(self) -> AllowedHosts:
        """``SPLATTER_ALLOWED_DOMAIN_HOSTS``, parsed."""
        return AllowedHosts.parse(self.splatter_allowed_domain_hosts)

    @property
    def job_timeout_s(self) -> float:
        """``JOB_TIMEOUT_SECS``, or the profile's default (2 h on the CPU backend, else 4 h)."""
        if self.job_timeout_secs is not None:
            return self.job_timeout_secs
        return 2 * 3600.0 if self.splatter_backend == "cpu" else 4 * 3600.0

    @property
    def download_rate(self) -> DownloadRateLimit:
        """The floor under every domain download (``MIN_DOWNLOAD_BYTES_PER_SEC`` per window)."""
        return DownloadRateLimit(
            float(self.min_download_bytes_per_sec), self.download_rate_window_secs
        )

    @property
    def database_path(self) -> Path:
        return self.splatter_data_dir / "jobs.sqlite3"

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redactor."""
        secrets = (self.reg_secret, self.secp256k1_privhex, self.splatter_api_token)
        return [s.get_secret_value() for s in secrets if s is not None]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()


def forget_secret_variables(
    settings: Settings, environ: MutableMapping[str, str] | None = None
) -> list[str]:
    """Removes the node's secrets from ``environ`` (``os.environ`` when omitted) once
    ``settings`` holds them: the variables of :data:`~pipeline.contract.SECRET_VARIABLES` (any
    case, as the settings read them) and every other variable holding one of their values.

    Libraries inside the node process start helper processes that inherit its environment
    (pycryptodome's ctypes backend runs ``file -b`` through ``platform.architecture()``;
    ``ctypes.util.find_library`` runs ``ldconfig``), so a secret left in ``os.environ`` would
    reach them. Returns the removed names, never a value.
    """
    environ = os.environ if environ is None else environ
    values = set(settings.secret_values())
    names = {name.upper() for name in SECRET_VARIABLES}
    removed = [k for k, v in environ.items() if k.upper() in names or (v and v in values)]
    for name in removed:
        del environ[name]
    return removed
