"""Sign-In with Ethereum, the DDS side: parse the message a node signed and recover its signer.

The node's message (protocol §1.3) has no statement and no resources, one empty line after the
address and no trailing newline:

    {domain} wants you to sign in with your Ethereum account:
    {lowercase address}

    URI: {uri}
    Version: {version}
    Chain ID: {chainId}
    Nonce: {nonce}
    Issued At: {issuedAt}

The parser also takes an optional statement line and the optional EIP-4361 fields, so that a
message from another SIWE library is understood rather than rejected as malformed. The signature
is EIP-191 `personal_sign` (65 bytes r‖s‖v, `0x` hex), recovered with eth-account.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_defunct

_HEADER_SUFFIX = " wants you to sign in with your Ethereum account:"
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")
_REQUIRED = ("URI", "Version", "Chain ID", "Nonce", "Issued At")
_OPTIONAL = ("Expiration Time", "Not Before", "Request ID")


class SiweError(ValueError):
    """A SIWE message or signature that cannot be accepted; the text says what is wrong."""


@dataclass(frozen=True)
class SiweMessage:
    """The fields of a parsed SIWE message; `address` is lowercased."""

    domain: str
    address: str
    uri: str
    version: str
    chain_id: int
    nonce: str
    issued_at: str
    statement: str | None = None


def is_address(text: str) -> bool:
    """`0x` + 40 hex digits (any case)."""
    return _ADDRESS.fullmatch(text) is not None


def parse_message(text: str) -> SiweMessage:
    """Parse a SIWE message; raises `SiweError` naming the first problem found."""
    lines = text.split("\n")
    if len(lines) < 3 or not lines[0].endswith(_HEADER_SUFFIX):
        raise SiweError(f"SIWE message must start with '<domain>{_HEADER_SUFFIX}'")
    domain = lines[0][: -len(_HEADER_SUFFIX)]
    if not domain:
        raise SiweError("SIWE message has an empty domain")
    if not is_address(lines[1]):
        raise SiweError("SIWE message line 2 must be a 0x-prefixed 40-hex-digit address")
    statement, fields = _parse_body(lines[2:])
    return SiweMessage(
        domain=domain,
        address=lines[1].lower(),
        uri=fields["URI"],
        version=fields["Version"],
        chain_id=_chain_id(fields["Chain ID"]),
        nonce=fields["Nonce"],
        issued_at=fields["Issued At"],
        statement=statement,
    )


def _parse_body(lines: list[str]) -> tuple[str | None, dict[str, str]]:
    """Statement (if any) and the `Key: value` fields after the address line."""
    if not lines or lines[0] != "":
        raise SiweError("SIWE message needs an empty line after the address")
    rest = lines[1:]
    statement = None
    if rest and not _is_field(rest[0]) and rest[0] != "":
        statement, rest = rest[0], rest[1:]
    while rest and rest[0] == "":
        rest = rest[1:]
    fields: dict[str, str] = {}
    for index, line in enumerate(rest):
        if line == "Resources:":
            _check_resources(rest[index + 1 :])
            break
        key, sep, value = line.partition(": ")
        if not sep or key not in _REQUIRED + _OPTIONAL:
            raise SiweError(f"SIWE message has an unexpected line: {line!r}")
        if key in fields:
            raise SiweError(f"SIWE message repeats the field {key!r}")
        fields[key] = value
    missing = [key for key in _REQUIRED if not fields.get(key)]
    if missing:
        raise SiweError(f"SIWE message lacks the field(s): {', '.join(missing)}")
    return statement, fields


def _is_field(line: str) -> bool:
    key, sep, _ = line.partition(": ")
    return bool(sep) and key in _REQUIRED + _OPTIONAL


def _check_resources(lines: list[str]) -> None:
    for line in lines:
        if not line.startswith("- "):
            raise SiweError(f"SIWE resources must be '- <uri>' lines, got {line!r}")


def _chain_id(text: str) -> int:
    if not text.isdigit():
        raise SiweError(f"SIWE Chain ID must be a decimal integer, got {text!r}")
    return int(text)


def recover_signer(message: str, signature: str) -> str:
    """Lowercase address whose key produced the EIP-191 `signature` over `message`."""
    if _SIGNATURE.fullmatch(signature) is None:
        raise SiweError("signature must be 0x followed by 130 hex digits (65 bytes r‖s‖v)")
    try:
        address: str = Account.recover_message(encode_defunct(text=message), signature=signature)
    # eth-keys raises BadSignature or eth-utils ValidationError; they share no base but Exception.
    except Exception as exc:
        raise SiweError(f"signature does not recover to any address: {exc}") from exc
    return address.lower()
