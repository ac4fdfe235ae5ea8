"""`python -m emulator --host 127.0.0.1 --port 8765 [...]`: run the emulator in the
foreground and print what to point a node at. Ctrl-C stops it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

from emulator.app import current_state
from emulator.config import EmulatorConfig, RotationPolicy
from emulator.server import prepare

_DEFAULTS = EmulatorConfig()


def build_parser() -> argparse.ArgumentParser:
    """The command line; every option maps onto an `EmulatorConfig` field."""
    parser = argparse.ArgumentParser(
        prog="python -m emulator",
        description="Emulate Auki's DDS, DMS and a domain server on one local port.",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--port", type=int, default=8765, help="port; 0 picks a free one (default 8765)")
    add("--public-url", help="base URL clients use, if not http://HOST:PORT")
    add("--data-dir", type=Path, help="keep domain data in this folder (default: in memory)")
    add("--reg-secret", default=_DEFAULTS.registration_secret, help="accepted REG_SECRET")
    add("--app-token", default=_DEFAULTS.app_token, help="bearer accepted by POST /v1/jobs")
    add("--chain-id", type=int, default=_DEFAULTS.chain_id, help="SIWE chain id")
    add(
        "--access-token-ttl",
        type=float,
        default=_DEFAULTS.access_token_ttl,
        help="seconds a DDS SIWE access token lives",
    )
    add(
        "--lease-ttl",
        type=float,
        default=_DEFAULTS.lease_ttl,
        help="seconds a lease lives after the lease call and each heartbeat",
    )
    add(
        "--token-ttl",
        type=float,
        default=_DEFAULTS.token_ttl,
        help="seconds a domain access token lives",
    )
    add(
        "--rotate",
        choices=get_args(RotationPolicy),
        default=_DEFAULTS.rotate,
        help="when heartbeats rotate the domain token",
    )
    add(
        "--rotate-fraction",
        type=float,
        default=_DEFAULTS.rotate_fraction,
        help="with --rotate fraction: rotate once this share of the TTL has passed",
    )
    add(
        "--revoke-superseded-tokens",
        action="store_true",
        help="refuse rotated-away domain tokens at once (stricter than real DDS)",
    )
    add(
        "--max-attempts",
        type=int,
        default=_DEFAULTS.default_max_attempts,
        help="default max_attempts of tasks that do not set one",
    )
    add(
        "--request-max-bytes",
        type=int,
        default=_DEFAULTS.request_max_bytes,
        help="largest upload request body (0 = unlimited)",
    )
    add(
        "--domain-data-max-bytes",
        type=int,
        default=_DEFAULTS.domain_data_max_bytes,
        help="largest item (0 = unlimited)",
    )
    add("--part-size", type=int, default=_DEFAULTS.part_size, help="chunked-upload part size")
    add("--no-multipart", action="store_true", help="disable the chunked upload API")
    add("--empty-list-404", action="store_true", help="answer 404 to queries matching nothing")
    add(
        "--allow-duplicate-names",
        action="store_true",
        help="let POST create a second item with an existing name + data_type",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """`EmulatorConfig` from parsed arguments."""
    return EmulatorConfig(
        public_url=args.public_url.rstrip("/") if args.public_url else None,
        data_dir=args.data_dir,
        registration_secret=args.reg_secret,
        chain_id=args.chain_id,
        access_token_ttl=args.access_token_ttl,
        app_token=args.app_token,
        lease_ttl=args.lease_ttl,
        token_ttl=args.token_ttl,
        rotate=args.rotate,
        rotate_fraction=args.rotate_fraction,
        revoke_superseded_tokens=args.revoke_superseded_tokens,
        default_max_attempts=args.max_attempts,
        request_max_bytes=args.request_max_bytes,
        domain_data_max_bytes=args.domain_data_max_bytes,
        part_size=args.part_size,
        multipart_enabled=not args.no_multipart,
        empty_list_404=args.empty_list_404,
        unique_names=not args.allow_duplicate_names,
    )


def banner(base_url: str, config: EmulatorConfig) -> str:
    """What a user needs to point a node at this emulator, one `KEY=value` per line."""
    return "\n".join(
        [
            f"Auki services emulator listening on {base_url}",
            f"DDS_BASE_URL={base_url}",
            f"DMS_BASE_URL={base_url}/v1",
            f"DOMAIN_SERVER_URL={base_url}",
            f"REG_SECRET={config.registration_secret}",
            f"APP_TOKEN={config.app_token}",
            f"ADMIN_URL={base_url}/_emulator",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, bind, print the banner, serve until Ctrl-C (exit 0) or SIGTERM."""
    args = build_parser().parse_args(argv)
    try:
        sock, app, server = prepare(config_from_args(args), args.host, args.port)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    state = current_state(app)
    print(banner(state.public_url(), state.config), flush=True)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it shut down for
        print("emulator stopped", file=sys.stderr)
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
