"""Node configuration from the reference node's environment variables (protocol §3.9).

:func:`load_node_config` applies the [PM]/[NH] normalisation rules: ``DDS_BASE_URL`` without a
path gains ``/``; ``REQUEST_TIMEOUT_SECS`` 0 becomes 1 and more than 300 is refused;
``NODE_VERSION`` accepts a leading ``v``; capabilities are sorted and de-duplicated;
``CLIENT_ID`` is trimmed (default ``splatter-node/<uuid4>``). Secrets are kept out of ``repr``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata

from domain_client.errors import ConfigError

__all__ = [
    "DEFAULT_DDS_BASE_URL",
    "DEFAULT_DMS_BASE_URL",
    "NodeConfig",
    "load_node_config",
    "normalise_capabilities",
    "normalise_client_id",
    "normalise_request_timeout",
    "normalise_url",
    "normalise_version",
    "package_version",
]

DEFAULT_DMS_BASE_URL = "https://dms.auki.network/v1"
DEFAULT_DDS_BASE_URL = "https://dds.auki.network/"
CLIENT_ID_PREFIX = "splatter-node"
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


def package_version() -> str:
    """This package's version (the fallback node version), or ``0.0.0-local``."""
    try:
        return metadata.version("splatter-node")
    except metadata.PackageNotFoundError:
        return "0.0.0-local"


@dataclass(frozen=True)
class NodeConfig:
    """Everything domain_client needs to run a node (units in the names).

    Defaults are the reference node's (protocol §3.9).
    """

    reg_secret: str = field(repr=False)
    secp256k1_privhex: str = field(repr=False)
    capabilities: tuple[str, ...]
    dms_base_url: str = DEFAULT_DMS_BASE_URL
    dds_base_url: str = DEFAULT_DDS_BASE_URL
    request_timeout_s: int = 60
    register_interval_s: int = 120
    register_max_retry: int = -1
    poll_backoff_ms_min: int = 1000
    poll_backoff_ms_max: int = 30000
    heartbeat_min_ratio: float = 0.25
    heartbeat_max_ratio: float = 0.35
    token_safety_ratio: float = 0.75
    token_reauth_max_retries: int = 3
    token_reauth_jitter_ms: int = 500
    node_version: str = "0.0.0-local"
    client_id: str = f"{CLIENT_ID_PREFIX}/00000000-0000-0000-0000-000000000000"


def normalise_version(raw: str | None, fallback: str) -> str:
    """``NODE_VERSION``: trimmed semver, else without one leading ``v``/``V``, else ``fallback``."""
    text = (raw or "").strip()
    if _SEMVER.match(text):
        return text
    if text[:1] in ("v", "V") and _SEMVER.match(text[1:]):
        return text[1:]
    return fallback


def normalise_capabilities(capabilities: Iterable[str]) -> tuple[str, ...]:
    """Sorted and de-duplicated; 1–100 entries of 1–256 characters without control characters."""
    unique = tuple(sorted(set(capabilities)))
    if not 1 <= len(unique) <= 100:
        raise ConfigError(f"capabilities: need 1 to 100, got {len(unique)}")
    for capability in unique:
        if not 1 <= len(capability) <= 256 or any(ord(c) < 32 or ord(c) == 127 for c in capability):
            raise ConfigError(
                f"capability {capability!r}: must be 1 to 256 characters without control characters"
            )
    return unique


def normalise_client_id(raw: str | None) -> str:
    """``CLIENT_ID`` trimmed, 1–128 printable ASCII; default ``splatter-node/<uuid4>``."""
    text = (raw or "").strip()
    if not text:
        return f"{CLIENT_ID_PREFIX}/{uuid.uuid4()}"
    if len(text) > 128 or not all(32 < ord(c) < 127 or c == " " for c in text):
        raise ConfigError("CLIENT_ID must be 1 to 128 printable ASCII characters")
    return text


def normalise_url(raw: str, name: str) -> str:
    """An http(s) base URL, trimmed; one without a path gains ``/`` ([PM] ``DDS_BASE_URL``).

    Raises:
        ConfigError: not an http(s) URL (the message names the variable ``name``).
    """
    text = raw.strip()
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in ("http", "https") or not rest:
        raise ConfigError(f"{name} must be an http(s) URL, got {text!r}")
    return text if "/" in rest else f"{text}/"


def _integer(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} required")
    return value


def normalise_request_timeout(seconds: int) -> int:
    """``REQUEST_TIMEOUT_SECS``: 0 (or less) becomes 1 ([PM]); more than 300 is refused ([NH]).

    Raises:
        ConfigError: over 300 seconds.
    """
    timeout = max(1, seconds)
    if timeout > 300:
        raise ConfigError(f"REQUEST_TIMEOUT_SECS must be 1 to 300, got {timeout}")
    return timeout


def load_node_config(
    env: Mapping[str, str],
    capabilities: Iterable[str] = ("/splatter/colmap/v1",),
    *,
    fallback_version: str | None = None,
) -> NodeConfig:
    """Read and normalise the node's environment.

    Raises:
        ConfigError: a required variable is missing (``"REG_SECRET required"``) or a value is
            out of range; the message names the variable, never a secret's value.
    """
    return NodeConfig(
        reg_secret=_required(env, "REG_SECRET"),
        secp256k1_privhex=_required(env, "SECP256K1_PRIVHEX"),
        capabilities=normalise_capabilities(capabilities),
        dms_base_url=normalise_url(env.get("DMS_BASE_URL") or DEFAULT_DMS_BASE_URL, "DMS_BASE_URL"),
        dds_base_url=normalise_url(env.get("DDS_BASE_URL") or DEFAULT_DDS_BASE_URL, "DDS_BASE_URL"),
        request_timeout_s=normalise_request_timeout(_integer(env, "REQUEST_TIMEOUT_SECS", 60)),
        register_interval_s=_integer(env, "REGISTER_INTERVAL_SECS", 120),
        register_max_retry=_integer(env, "REGISTER_MAX_RETRY", -1),
        poll_backoff_ms_min=_integer(env, "POLL_BACKOFF_MS_MIN", 1000),
        poll_backoff_ms_max=_integer(env, "POLL_BACKOFF_MS_MAX", 30000),
        heartbeat_min_ratio=_number(env, "HEARTBEAT_MIN_RATIO", 0.25),
        heartbeat_max_ratio=_number(env, "HEARTBEAT_MAX_RATIO", 0.35),
        token_safety_ratio=_number(env, "TOKEN_SAFETY_RATIO", 0.75),
        token_reauth_max_retries=_integer(env, "TOKEN_REAUTH_MAX_RETRIES", 3),
        token_reauth_jitter_ms=_integer(env, "TOKEN_REAUTH_JITTER_MS", 500),
        node_version=normalise_version(
            env.get("NODE_VERSION"), fallback_version or package_version()
        ),
        client_id=normalise_client_id(env.get("CLIENT_ID")),
    )
