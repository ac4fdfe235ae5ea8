"""The SSRF rules of pushed URLs (app.targets): URL form, address classes, the allow-list."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from app.targets import AllowedHosts, ForbiddenTargetError, HostPattern, Resolver, check_target

pytestmark = pytest.mark.anyio

NONE = AllowedHosts()


def resolver(table: dict[str, list[str]]) -> Resolver:
    """A name resolver over a fixed table; unknown names fail like a DNS miss."""

    async def resolve(host: str, port: int) -> Sequence[str]:
        if host not in table:
            raise OSError(f"[Errno -2] Name or service not known: {host}")
        return table[host]

    return resolve


@pytest.mark.parametrize(
    ("host", "addresses"),
    [
        ("public.example", ["93.184.216.34"]),
        ("v6.example", ["2606:2800:220:1:248:1893:25c8:1946"]),
    ],
)
async def test_names_resolving_only_to_public_addresses_pass(
    host: str, addresses: list[str]
) -> None:
    url = f"https://{host}/prefix"
    await check_target("domain_server_url", url, NONE, resolver({host: addresses}))


@pytest.mark.parametrize(
    ("addresses", "message"),
    [
        (["93.184.216.34", "10.1.2.3"], "rebind.example (10.1.2.3) is a private address"),
        (["127.0.0.1"], "rebind.example (127.0.0.1) is a loopback address"),
        (["169.254.169.254"], "rebind.example (169.254.169.254) is a link-local address"),
        (["fd00:ec2::254"], "rebind.example (fd00:ec2::254) is a private address"),
        (["::ffff:127.0.0.1"], "is a loopback address"),
        (["100.100.100.200"], "rebind.example (100.100.100.200) is a non-public address"),
        (["224.0.0.1"], "is a multicast address"),
    ],
)
async def test_every_resolved_address_must_be_public(addresses: list[str], message: str) -> None:
    with pytest.raises(ForbiddenTargetError, match=r"^domain_server_url host ") as caught:
        await check_target(
            "domain_server_url", "https://rebind.example/", NONE,
            resolver({"rebind.example": addresses}),
        )  # fmt: skip
    assert message in str(caught.value)
    assert "SPLATTER_ALLOWED_DOMAIN_HOSTS allows rebind.example:443" in str(caught.value)


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(ForbiddenTargetError, match=r"progress_url host nowhere\.invalid does not"):
        await check_target("progress_url", "http://nowhere.invalid/p", NONE, resolver({}))


@pytest.mark.parametrize(
    ("patterns", "url", "allowed"),
    [
        ("127.0.0.1", "http://127.0.0.1:9/", True),
        ("127.0.0.1:8080", "http://127.0.0.1:9/", False),
        ("127.0.0.1:8080", "http://127.0.0.1:8080/", True),
        ("*.corp.example:443", "https://dom.corp.example/", True),
        ("*.corp.example:443", "http://dom.corp.example/", False),
        ("10.0.0.*", "http://10.0.0.7:8000/", True),
        ("10.0.0.*", "http://10.0.1.7:8000/", False),
        ("[::1]:8080, localhost", "http://[::1]:8080/", True),
        ("[::1]:8080 localhost", "http://localhost:1/", True),
        ("[::1]:8080", "http://[::1]:8081/", False),
        ("", "http://127.0.0.1/", False),
    ],
)
async def test_the_allow_list_lets_an_operator_name_private_hosts(
    patterns: str, url: str, allowed: bool
) -> None:
    table = {"dom.corp.example": ["10.9.9.9"], "localhost": ["127.0.0.1"]}
    check = check_target("domain_server_url", url, AllowedHosts.parse(patterns), resolver(table))
    if allowed:
        await check
    else:
        with pytest.raises(ForbiddenTargetError):
            await check


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("https://x.example", "no scheme, path or userinfo"),
        ("u@x.example", "no scheme, path or userinfo"),
        ("x.example:0", "port must be 1-65535"),
        ("x.example:http", "port must be 1-65535"),
        ("[::1]x", "text after ] must be :port"),
    ],
)
def test_bad_allow_list_entries_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HostPattern.parse(text)
