"""The node's wallet identity and Sign-In with Ethereum messages (protocol §1.3).

The address is the lowercase (not EIP-55) ``0x`` form; signatures are EIP-191 personal-message
signatures, 65 bytes ``r‖s‖v`` with ``v`` in {27, 28}, as ``0x`` + 130 lowercase hex digits.
The private key never appears in ``repr()``, logs or error messages.
"""

from __future__ import annotations

import re

from eth_account import Account
from eth_account.messages import encode_defunct

from domain_client.errors import InvalidKeyError, NonceError
from domain_client.models import SiweNonce

__all__ = ["Wallet", "build_siwe_message"]

_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")


class Wallet:
    """A secp256k1 key used to register and log in with DDS."""

    def __init__(self, private_key: bytes) -> None:
        if len(private_key) != 32:
            raise InvalidKeyError("a wallet key must be exactly 32 bytes")
        self._key = private_key
        self._address = str(Account.from_key(private_key).address).lower()

    @classmethod
    def from_hex(cls, privhex: str) -> Wallet:
        """From ``SECP256K1_PRIVHEX``: 64 hex digits, optional ``0x``, whitespace trimmed.

        Raises:
            InvalidKeyError: not 32 bytes of hex (the value is not echoed).
        """
        text = privhex.strip()
        if text[:2] in ("0x", "0X"):
            text = text[2:]
        if not _HEX_KEY.match(text):
            raise InvalidKeyError(
                "SECP256K1_PRIVHEX must be a 32-byte secp256k1 key as 64 hex digits "
                f"(optional 0x prefix); got {len(text)} characters"
            )
        return cls(bytes.fromhex(text))

    def __repr__(self) -> str:
        return f"Wallet(address={self._address!r})"

    @property
    def address(self) -> str:
        """Lowercase ``0x`` + 40 hex digits."""
        return self._address

    def sign_personal(self, message: str) -> str:
        """EIP-191 signature of ``message`` as ``0x`` + 130 lowercase hex digits."""
        signed = Account.sign_message(encode_defunct(text=message), private_key=self._key)
        signature = bytes(signed.signature)
        return "0x" + signature.hex()


def build_siwe_message(nonce: SiweNonce, address: str) -> str:
    """The SIWE message of protocol §1.3 (no statement, no trailing newline).

    Raises:
        NonceError: the nonce response lacks a field (an empty ``nonce`` counts as missing).
    """
    missing = [
        field
        for field, value in (
            ("nonce", nonce.nonce),
            ("domain", nonce.domain),
            ("uri", nonce.uri),
            ("version", nonce.version),
            ("chainId", nonce.chain_id),
            ("issuedAt", nonce.issued_at),
        )
        if value is None or value == ""
    ]
    if missing:
        raise NonceError(f"SIWE nonce response is missing {', '.join(missing)}")
    return (
        f"{nonce.domain} wants you to sign in with your Ethereum account:\n"
        f"{address}\n"
        "\n"
        f"URI: {nonce.uri}\n"
        f"Version: {nonce.version}\n"
        f"Chain ID: {nonce.chain_id}\n"
        f"Nonce: {nonce.nonce}\n"
        f"Issued At: {nonce.issued_at}"
    )
