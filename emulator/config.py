"""Emulator configuration: one frozen dataclass with documented defaults.

Durations are seconds, sizes are bytes. A size limit of 0 means "unlimited", as on the real
domain server (protocol §2.2, `/api/v1/info`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

RotationPolicy = Literal["always", "fraction", "never"]
"""When a heartbeat hands out a new domain token: on every call, once the current token has lived
`rotate_fraction` of its TTL, or never (the token is only re-issued once it has expired)."""

MiB = 1024 * 1024


@dataclass(frozen=True)
class EmulatorConfig:
    """Behaviour knobs of the DDS / DMS / domain-server emulator.

    public_url: base URL the three services are reached at (no trailing `/`), e.g.
        `http://127.0.0.1:8765`. DDS is served at its root, DMS under `/v1`, the domain server
        under `/api/v1`. None = derive it from each request's own base URL (in-process tests).
    """

    public_url: str | None = None
    data_dir: Path | None = None
    """Folder for domain data (content + metadata JSON); None keeps everything in memory."""

    # --- DDS ---
    registration_secret: str = "emulator-reg-secret"
    """The `registration_credentials` register-wallet accepts (the node's `REG_SECRET`)."""
    chain_id: int = 8453
    siwe_domain: str | None = None
    """SIWE `domain` handed out with nonces; None = host[:port] of the public URL."""
    nonce_ttl: float = 300.0
    access_token_ttl: float = 3600.0
    """Lifetime of the DDS SIWE access token (the DMS bearer)."""

    # --- DMS ---
    app_token: str = "emulator-app-token"
    """Bearer accepted by `POST /v1/jobs` (stands in for a DDS-signed app JWT)."""
    lease_ttl: float = 60.0
    """A lease lives this long after the lease call and after every heartbeat."""
    token_ttl: float = 300.0
    """Lifetime of the domain-scoped access token carried by leases and heartbeats."""
    rotate: RotationPolicy = "fraction"
    rotate_fraction: float = 0.5
    revoke_superseded_tokens: bool = False
    """If true, a rotated-away domain token (and every token of a finished lease) stops working
    at once, so a client still using an old token is caught. The real tokens are stateless JWTs
    valid until `exp`; this is stricter on purpose."""
    default_max_attempts: int = 3
    one_lease_per_node: bool = True
    """A node that already holds a lease gets 409 ("busy", protocol §1.6) from `GET /v1/tasks`."""
    progress_max_bytes: int = 64 * 1024

    # --- domain server ---
    request_max_bytes: int = 128 * MiB
    domain_data_max_bytes: int = 64 * MiB
    multipart_enabled: bool = True
    part_size: int = 8 * MiB
    """Part size for chunked uploads, capped at `request_max_bytes` when that is set."""
    unique_names: bool = True
    """Creating an item whose name + data_type already exists in the domain answers 409
    (protocol §2.13: runners read a 409 on re-upload as "already exists")."""
    empty_list_404: bool = False
    """Answer 404 instead of an empty list / empty multipart body when a query matches nothing."""
    download_boundary: str | None = None
    """Fixed boundary for multipart downloads (tests); None = 60 random hex chars per response."""
    max_ids_per_query: int = 100

    # --- emulator itself ---
    token_secret: str | None = None
    """HMAC key for the JWT-shaped tokens; None draws a random one per process."""
    request_log_size: int = 10_000

    def effective_part_size(self) -> int:
        """Part size handed to chunked uploads: never above `request_max_bytes`."""
        if self.request_max_bytes > 0:
            return max(1, min(self.part_size, self.request_max_bytes))
        return self.part_size
