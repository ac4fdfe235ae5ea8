"""SIWE parsing and signer recovery, in-process, against the §1.3 test vector."""

from __future__ import annotations

import pytest

from emulator.siwe import SiweError, parse_message, recover_signer
from tests.emulator.factories import TEST_ADDRESS, TEST_KEY, address_of, sign

VECTOR_MESSAGE = (
    "example.com wants you to sign in with your Ethereum account:\n"
    f"{TEST_ADDRESS}\n\n"
    "URI: https://example.com\nVersion: 1\nChain ID: 1\nNonce: abc123\n"
    "Issued At: 2024-05-01T00:00:00Z"
)
VECTOR_SIGNATURE = (
    "0x390786f1c4840ec337aef7c4a6d15bba128cc308e2f32f4528e2f8dd44f61f354a68a45bcf7d39eb724346a0"
    "2f6eefebd8a39e20ebf68435bfe026ed47b1e5171b"
)


def test_the_vector_signature_recovers_the_vector_address() -> None:
    assert address_of(TEST_KEY) == TEST_ADDRESS
    assert sign(VECTOR_MESSAGE, TEST_KEY) == VECTOR_SIGNATURE
    assert recover_signer(VECTOR_MESSAGE, VECTOR_SIGNATURE) == TEST_ADDRESS


def test_the_vector_message_parses() -> None:
    message = parse_message(VECTOR_MESSAGE)
    assert message.domain == "example.com" and message.address == TEST_ADDRESS
    assert message.uri == "https://example.com" and message.version == "1"
    assert message.chain_id == 1 and message.nonce == "abc123"
    assert message.issued_at == "2024-05-01T00:00:00Z" and message.statement is None


def test_a_changed_message_recovers_another_address() -> None:
    changed = VECTOR_MESSAGE.replace("abc123", "abc124")
    assert recover_signer(changed, VECTOR_SIGNATURE) != TEST_ADDRESS


def test_statement_optional_fields_and_resources_are_understood() -> None:
    text = (
        "example.com wants you to sign in with your Ethereum account:\n"
        "0xFDBB6CAF01414300C16EA14859FEC7736D95355F\n\nPlease sign in.\n\n"
        "URI: https://example.com\nVersion: 1\nChain ID: 8453\nNonce: n1\n"
        "Issued At: 2024-05-01T00:00:00Z\nExpiration Time: 2024-05-02T00:00:00Z\n"
        "Resources:\n- https://a.example\n- https://b.example"
    )
    message = parse_message(text)
    assert message.statement == "Please sign in." and message.chain_id == 8453
    assert message.address == TEST_ADDRESS


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("hello", "must start with '<domain> wants you to sign in"),
        (" wants you to sign in with your Ethereum account:\n0x1\n", "empty domain"),
        (VECTOR_MESSAGE.replace(TEST_ADDRESS, "0x1234"), "line 2 must be a 0x-prefixed"),
        (VECTOR_MESSAGE.replace("\n\nURI", "\nURI"), "needs an empty line after the address"),
        (VECTOR_MESSAGE.replace("Nonce: abc123\n", ""), "lacks the field(s): Nonce"),
        (VECTOR_MESSAGE.replace("Chain ID: 1", "Chain ID: one"), "Chain ID must be a decimal"),
        (VECTOR_MESSAGE + "\nColour: blue", "unexpected line: 'Colour: blue'"),
        (VECTOR_MESSAGE + "\nNonce: again", "repeats the field 'Nonce'"),
        (VECTOR_MESSAGE + "\nResources:\nhttps://x", "resources must be '- <uri>' lines"),
    ],
)
def test_malformed_messages_name_the_problem(text: str, detail: str) -> None:
    with pytest.raises(SiweError) as caught:
        parse_message(text)
    assert detail in str(caught.value)


@pytest.mark.parametrize(
    ("signature", "detail"),
    [
        ("0x1234", "130 hex digits"),
        (VECTOR_SIGNATURE[2:], "130 hex digits"),
        ("0x" + "ff" * 65, "does not recover to any address"),
    ],
)
def test_bad_signatures_name_the_problem(signature: str, detail: str) -> None:
    with pytest.raises(SiweError) as caught:
        recover_signer(VECTOR_MESSAGE, signature)
    assert detail in str(caught.value)
