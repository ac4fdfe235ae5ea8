"""The lease-mode configuration of a node: one model, its defaults and its rules (protocol §3.9).

:class:`NodeConfig` holds every lease-mode setting once, with the reference node's defaults and
the [PM]/[NH] normalisation rules as field validators: ``DDS_BASE_URL`` without a path gains
``/``; ``REQUEST_TIMEOUT_SECS`` 0 becomes 1 and more than 300 is refused; ``NODE_VERSION``
accepts a leading ``v``; ``CLIENT_ID`` is trimmed (default ``splatter-node/<uuid4>``).
Every field name is its environment variable in lower case. ``domain_client`` never reads the
environment: the app's pydantic-settings ``Settings`` inherits these fields and is the one
parser; tests build a ``NodeConfig`` directly. Secrets are ``SecretStr`` (never in ``repr``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from importlib import metadata

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from domain_client.errors import ConfigError

__all__ = [
    "DEFAULT_DDS_BASE_URL",
    "DEFAULT_DMS_BASE_URL",
    "DEFAULT_HEARTBEAT_RATIOS",
    "DEFAULT_POLL_BACKOFF_MS",
    "DEFAULT_REGISTER_INTERVAL_SECS",
    "DEFAULT_REGISTER_MAX_RETRY",
    "DEFAULT_TOKEN_REAUTH_JITTER_MS",
    "DEFAULT_TOKEN_REAUTH_MAX_RETRIES",
    "DEFAULT_TOKEN_SAFETY_RATIO",
    "NodeConfig",
    "normalise_capabilities",
    "normalise_client_id",
    "normalise_request_timeout",
    "normalise_url",
    "normalise_version",
    "package_version",
]

DEFAULT_DMS_BASE_URL = "https://dms.auki.network/v1"
DEFAULT_DDS_BASE_URL = "https://dds.auki.network/"
DEFAULT_POLL_BACKOFF_MS = (1000, 30000)
"""[PM] ``POLL_BACKOFF_MS_MIN`` / ``POLL_BACKOFF_MS_MAX``: idle poll jitter range, ms."""
DEFAULT_HEARTBEAT_RATIOS = (0.25, 0.35)
"""[PM] ``HEARTBEAT_MIN_RATIO`` / ``HEARTBEAT_MAX_RATIO``: heartbeat due fraction of the TTL."""
DEFAULT_REGISTER_INTERVAL_SECS = 120
DEFAULT_REGISTER_MAX_RETRY = -1
DEFAULT_TOKEN_SAFETY_RATIO = 0.75
DEFAULT_TOKEN_REAUTH_MAX_RETRIES = 3
DEFAULT_TOKEN_REAUTH_JITTER_MS = 500
# These defaults are named once here because the components that use them (registrar, token
# manager, engine, heartbeat driver) take their own small configs with the same defaults.
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


def normalise_request_timeout(seconds: int) -> int:
    """``REQUEST_TIMEOUT_SECS``: 0 (or less) becomes 1 ([PM]); more than 300 is refused ([NH]).

    Raises:
        ConfigError: over 300 seconds.
    """
    timeout = max(1, seconds)
    if timeout > 300:
        raise ConfigError(f"REQUEST_TIMEOUT_SECS must be 1 to 300, got {timeout}")
    return timeout


class NodeConfig(BaseModel):
    """Everything ``domain_client`` needs to run a lease-mode node (units in the names).

    Defaults are the reference node's (protocol §3.9). Both secrets are optional here so that
    the app can inherit the fields for a node without lease mode; :attr:`lease_mode` says
    whether both are set, and ``build_lease_node`` refuses a config without them.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    reg_secret: SecretStr | None = None
    """Registration credentials from the Posemesh console; with the key, enables lease mode."""
    secp256k1_privhex: SecretStr | None = None
    """Hex secp256k1 private key (32 bytes, optional ``0x``) of the staked wallet."""
    dms_base_url: str = DEFAULT_DMS_BASE_URL
    dds_base_url: str = DEFAULT_DDS_BASE_URL
    request_timeout_secs: int = 60
    """DMS and DDS HTTP timeout in seconds (0 becomes 1; over 300 is refused)."""
    register_interval_secs: int = Field(DEFAULT_REGISTER_INTERVAL_SECS, gt=0)
    register_max_retry: int = Field(DEFAULT_REGISTER_MAX_RETRY, ge=-1)
    poll_backoff_ms_min: int = Field(DEFAULT_POLL_BACKOFF_MS[0], ge=0)
    poll_backoff_ms_max: int = Field(DEFAULT_POLL_BACKOFF_MS[1], ge=0)
    heartbeat_min_ratio: float = Field(DEFAULT_HEARTBEAT_RATIOS[0], gt=0, le=1)
    heartbeat_max_ratio: float = Field(DEFAULT_HEARTBEAT_RATIOS[1], gt=0, le=1)
    token_safety_ratio: float = Field(DEFAULT_TOKEN_SAFETY_RATIO, gt=0, le=1)
    token_reauth_max_retries: int = Field(DEFAULT_TOKEN_REAUTH_MAX_RETRIES, ge=0)
    token_reauth_jitter_ms: int = Field(DEFAULT_TOKEN_REAUTH_JITTER_MS, ge=0)
    node_version: str = Field("", validate_default=True)
    """Registration ``version``; normalised to semver (leading ``v`` dropped, else ours)."""
    client_id: str = Field(default_factory=lambda: normalise_client_id(None))
    """``posemesh-client-id`` header: 1–128 printable ASCII characters."""

    @field_validator("dms_base_url", "dds_base_url")
    @classmethod
    def _check_url(cls, value: str, info: ValidationInfo) -> str:
        return normalise_url(value, str(info.field_name).upper())

    @field_validator("request_timeout_secs")
    @classmethod
    def _check_request_timeout(cls, value: int) -> int:
        return normalise_request_timeout(value)

    @field_validator("node_version", mode="before")
    @classmethod
    def _normalise_version(cls, value: object) -> str:
        return normalise_version(None if value is None else str(value), cls._fallback_version())

    @classmethod
    def _fallback_version(cls) -> str:
        """The version reported when ``NODE_VERSION`` is unset or not semver."""
        return package_version()

    @field_validator("client_id")
    @classmethod
    def _check_client_id(cls, value: str) -> str:
        return normalise_client_id(value)

    @field_validator("secp256k1_privhex")
    @classmethod
    def _check_privhex(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value().strip()
        text = text[2:] if text[:2].lower() == "0x" else text
        if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
            # Never echo the key: the message names the rule only.
            raise ValueError("must be 32 bytes of hex (64 hex digits, optional 0x prefix)")
        return SecretStr(text.lower())

    @model_validator(mode="after")
    def _check_lease_pairs(self) -> NodeConfig:
        if (self.reg_secret is None) != (self.secp256k1_privhex is None):
            missing = "REG_SECRET" if self.reg_secret is None else "SECP256K1_PRIVHEX"
            raise ValueError(
                f"{missing} required: lease mode needs REG_SECRET and SECP256K1_PRIVHEX"
            )
        if self.heartbeat_min_ratio > self.heartbeat_max_ratio:
            raise ValueError("HEARTBEAT_MIN_RATIO must not exceed HEARTBEAT_MAX_RATIO")
        return self

    @property
    def lease_mode(self) -> bool:
        """True when the node registers with DDS and leases tasks from DMS."""
        return self.reg_secret is not None and self.secp256k1_privhex is not None

    def secrets(self) -> tuple[str, str]:
        """``(REG_SECRET, SECP256K1_PRIVHEX)`` in clear, for the registrar and the wallet.

        Raises:
            ConfigError: lease mode is not configured.
        """
        if self.reg_secret is None or self.secp256k1_privhex is None:
            raise ConfigError("lease mode needs REG_SECRET and SECP256K1_PRIVHEX")
        return self.reg_secret.get_secret_value(), self.secp256k1_privhex.get_secret_value()

    def lease_config(self) -> NodeConfig:
        """This configuration as a plain ``NodeConfig`` (fields copied by name, no re-parsing).

        A subclass (the app's ``Settings``) hands ``domain_client`` only the lease fields.
        """
        return NodeConfig.model_construct(
            **{name: getattr(self, name) for name in NodeConfig.model_fields}
        )
