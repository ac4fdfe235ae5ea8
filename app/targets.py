"""Where the push door lets the node send a domain token: the SSRF rules of pushed URLs.

A pushed envelope names the domain server (``domain_server_url``) that receives the job's
bearer token, and optionally a ``progress_url`` that receives its progress. Both are checked
twice:

1. Form (:func:`url_form_problem`, in the request schema: 422): ``http`` or ``https``, a host,
   no userinfo (``https://good@evil``), no query, no fragment (the node appends paths to a
   *path prefix*; ``?`` and ``#`` would cut them off), and an IP literal only in its canonical
   dotted form (``2130706433``, ``0x7f.1`` and ``0177.0.0.1`` all mean 127.0.0.1 to a resolver).
2. Address (:func:`check_target`, before the job is queued and again when it starts): the
   host is resolved and every address must be public. Loopback, link-local (cloud metadata at
   169.254.169.254), private, shared (CGNAT), unspecified, multicast and reserved addresses are
   refused unless the host matches ``SPLATTER_ALLOWED_DOMAIN_HOSTS``
   (:class:`AllowedHosts`).
3. Connection (:mod:`app.jobs.egress`): every connection a push job opens resolves the host
   once more, applies the same address rule and connects to the address it checked, so a DNS
   answer that changes after 2. (DNS rebinding) cannot reach a refused address.

The node's HTTP client never follows redirects, so a checked server cannot bounce the token on.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

__all__ = [
    "AllowedHosts",
    "ForbiddenTargetError",
    "HostPattern",
    "Resolver",
    "check_target",
    "non_public_kind",
    "public_addresses",
    "system_resolver",
    "url_form_problem",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``(host, port) → addresses`` (text); raises ``OSError`` when the name does not resolve."""

_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?$", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ForbiddenTargetError(ValueError):
    """A pushed URL points at an address the node must not send a token to."""


def url_form_problem(url: str) -> str | None:
    """Why ``url`` is not an acceptable base URL, or ``None`` when its form is fine."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in _DEFAULT_PORTS:
        return "must start with http:// or https://"
    return _authority_problem(parts) or _tail_problem(url, parts)


def _authority_problem(parts: SplitResult) -> str | None:
    if "@" in parts.netloc:
        return "must not contain userinfo (user@host)"
    host = parts.hostname
    if not host:
        return "has no host"
    if _NUMERIC_HOST.match(host) and not _is_canonical_ipv4(host):
        return f"host {host!r} is a non-canonical IP address; write it as a dotted quad"
    return None


def _tail_problem(url: str, parts: SplitResult) -> str | None:
    if "?" in url:
        return "must not contain a query (?)"
    if "#" in url:
        return "must not contain a fragment (#)"
    if "\\" in parts.path or any(ord(c) < 0x21 for c in url):
        return "must not contain backslashes, spaces or control characters"
    return None


def _is_canonical_ipv4(host: str) -> bool:
    try:
        return str(ipaddress.IPv4Address(host)) == host
    except ValueError:
        return False


@dataclass(frozen=True)
class HostPattern:
    """One ``SPLATTER_ALLOWED_DOMAIN_HOSTS`` entry.

    Attributes:
        host: a host name or IP literal, lower case; ``*`` and ``?`` are wildcards
            (``*.corp.example``, ``10.0.0.*``).
        port: the port it allows, or ``None`` for any port.
    """

    host: str
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``.

        Raises:
            ValueError: the entry is empty, has a scheme or path, or a bad port.
        """
        entry = text.strip().lower()
        if not entry or "/" in entry or "@" in entry:
            raise ValueError(f"{text!r} is not host[:port] (no scheme, path or userinfo)")
        host, port = _split_host_port(entry)
        if not host:
            raise ValueError(f"{text!r} has no host")
        return cls(host, port)

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        return fnmatch.fnmatchcase(host.lower(), self.host)


def _split_host_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port_text = rest.removeprefix(":") if rest.startswith(":") else None
        if rest and port_text is None:
            raise ValueError(f"{entry!r}: text after ] must be :port")
    elif entry.count(":") == 1:
        host, port_text = entry.split(":")
    else:
        host, port_text = entry, None  # a bare IPv6 literal has several colons
    if port_text in (None, "*"):
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{entry!r}: port must be 1-65535 or *")
    return host, int(port_text)


@dataclass(frozen=True)
class AllowedHosts:
    """The operator's exceptions to the public-address rule (``SPLATTER_ALLOWED_DOMAIN_HOSTS``)."""

    patterns: tuple[HostPattern, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AllowedHosts:
        """Comma- or space-separated :class:`HostPattern` entries (empty text: none)."""
        entries = [e for e in re.split(r"[,\s]+", text) if e]
        return cls(tuple(HostPattern.parse(e) for e in entries))

    def allows(self, host: str, port: int) -> bool:
        return any(p.matches(host, port) for p in self.patterns)


async def system_resolver(host: str, port: int) -> Sequence[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def check_target(
    field: str, url: str, allowed: AllowedHosts, resolve: Resolver = system_resolver
) -> None:
    """Refuses ``url`` unless every address of its host is public or the host is allowed.

    Args:
        field: the envelope field, for the message (``domain_server_url``).
        url: a URL that passed :func:`url_form_problem`.
        allowed: ``SPLATTER_ALLOWED_DOMAIN_HOSTS``.
        resolve: name resolution (tests inject one).

    Raises:
        ForbiddenTargetError: naming the field, the host and why.
    """
    problem = url_form_problem(url)
    if problem is not None:
        raise ForbiddenTargetError(f"{field} {problem}")
    parts = urlsplit(url)
    host = str(parts.hostname)
    port = parts.port or _DEFAULT_PORTS[parts.scheme]
    if allowed.allows(host, port):
        return
    await public_addresses(field, host, port, resolve)


async def public_addresses(
    field: str, host: str, port: int, resolve: Resolver = system_resolver
) -> list[IPAddress]:
    """The addresses of ``host`` (itself when it is an IP literal), once every one is public.

    Raises:
        ForbiddenTargetError: the host does not resolve, or an address is not public (the
            message names ``field``, the host, the address and ``SPLATTER_ALLOWED_DOMAIN_HOSTS``).
    """
    addresses = await _addresses(field, host, port, resolve)
    for address in addresses:
        kind = non_public_kind(address)
        if kind is not None:
            shown = host if str(address) == host else f"{host} ({address})"
            authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            article = "an" if kind[0] in "aeiou" else "a"
            raise ForbiddenTargetError(
                f"{field} host {shown} is {article} {kind} address; the node only sends tokens to "
                f"public addresses unless SPLATTER_ALLOWED_DOMAIN_HOSTS allows {authority}"
            )
    return addresses


async def _addresses(field: str, host: str, port: int, resolve: Resolver) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        found = await resolve(host, port)
    except OSError as exc:
        raise ForbiddenTargetError(f"{field} host {host} does not resolve ({exc})") from exc
    if not found:
        raise ForbiddenTargetError(f"{field} host {host} does not resolve")
    return [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]


def non_public_kind(address: IPAddress) -> str | None:
    """What kind of non-public address this is (``loopback``, ``link-local``, ...) or ``None``."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return non_public_kind(address.ipv4_mapped)
    for kind, flag in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if flag:
            return kind
    return None if address.is_global else "non-public"
