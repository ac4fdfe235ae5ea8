"""Naming, capability and version rules, in-process."""

from __future__ import annotations

import pytest

from emulator.rules import (
    DISALLOWED_NAME_CHARS,
    capabilities_violation,
    is_semver,
    is_uuid,
    name_rule_violation,
)


@pytest.mark.parametrize(
    "name",
    ["refined_splat_2024-01-02_03-04-05", "a", "x" * 128, "dots.are.fine", "ünïcode", "a b"],
)
def test_valid_names(name: str) -> None:
    assert name_rule_violation("name", name) is None


def test_every_disallowed_character_is_named() -> None:
    assert set(';!?<>[]{}()/\\"$#@*^&|~%=+') == DISALLOWED_NAME_CHARS
    for char in DISALLOWED_NAME_CHARS:
        assert name_rule_violation("data_type", f"a{char}b") == (
            f"data_type contains disallowed character {char!r}"
        )


def test_length_is_counted_in_utf8_bytes() -> None:
    assert name_rule_violation("name", "é" * 64) is None
    assert name_rule_violation("name", "é" * 64 + "x") == "name must be 1–128 bytes long (got 129)"


def test_control_characters() -> None:
    assert name_rule_violation("name", "a\x7fb") == "name contains a control character (U+007F)"


def test_capabilities() -> None:
    assert capabilities_violation(["/splatter/colmap/v1"]) is None
    assert capabilities_violation([f"/c{i}" for i in range(101)]) == (
        "capabilities must list 1–100 entries (got 101)"
    )
    assert capabilities_violation([""]) == "capability must be 1–256 characters: ''"


@pytest.mark.parametrize(
    ("version", "valid"),
    [
        ("1.2.3", True),
        ("0.0.0-local", True),
        ("1.0.0+build.5", True),
        ("v1.2.3", False),
        ("1.2", False),
        ("01.2.3", False),
    ],
)
def test_semver(version: str, valid: bool) -> None:
    assert is_semver(version) is valid


def test_uuid() -> None:
    assert is_uuid("0b0a1c36-9a7c-4d5e-8f00-0123456789ab")
    assert not is_uuid("0b0a1c369a7c4d5e8f000123456789ab")
    assert not is_uuid("bafy-123")
