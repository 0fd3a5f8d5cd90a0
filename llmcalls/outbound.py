"""Where model calls may go: the policy for user-supplied `llm_base_url`s (server-side request forgery).

A project key can point an LLM config at any URL, and the workers then send the config's key there
and report what answered. So only http(s) URLs are allowed, and by default only hosts whose every
address is global (not loopback, link-local, private, multicast, reserved or unspecified). The
check runs when a config is written and again before every call, because a name may resolve
elsewhere later (DNS rebinding). The operator's own `ASSAY_LLM_BASE_URL` is trusted and not checked;
`ASSAY_LLM_ALLOWED_HOSTS` lists hosts, addresses or networks that are allowed anyway.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ALLOWED_SCHEMES = ("http", "https")


class OutboundRefused(ValueError):
    """The URL may not be called; the message says why (it never includes what the host answered)."""


@dataclass(frozen=True)
class OutboundPolicy:
    """Hosts (lower-case `name` or `name:port`) and networks allowed even when they are not global."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IpNetwork, ...] = ()

    @classmethod
    def parse(cls, allowed: str | Iterable[str]) -> OutboundPolicy:
        """From `ASSAY_LLM_ALLOWED_HOSTS`: names, `host:port`s, addresses or CIDR networks, comma-separated."""
        items = allowed.split(",") if isinstance(allowed, str) else allowed
        hosts, networks = set(), []
        for item in (i.strip().lower() for i in items):
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                if item:
                    hosts.add(item.replace("[", "").replace("]", ""))
        return cls(frozenset(hosts), tuple(networks))

    def allows_name(self, host: str, port: int) -> bool:
        return host in self.hosts or f"{host}:{port}" in self.hosts

    def allows(self, address: IpAddress) -> bool:
        if address.is_global and not address.is_multicast:
            return True
        return any(address in network for network in self.networks)


def split_url(url: str) -> tuple[str, int]:
    """The host and port of an http(s) URL; anything else is refused."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused(f"not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise OutboundRefused(f"must be an http or https URL, got {url[:100]!r}")
    if not parts.hostname:
        raise OutboundRefused("the URL has no host")
    return parts.hostname.lower(), port or (443 if parts.scheme.lower() == "https" else 80)


def check_addresses(host: str, addresses: Iterable[str], policy: OutboundPolicy) -> None:
    """Every address the host resolves to must be allowed (one internal address is enough to refuse)."""
    resolved = [ipaddress.ip_address(a.split("%", 1)[0]) for a in addresses]
    if not resolved:
        raise OutboundRefused(f"host {host!r} does not resolve")
    for address in resolved:
        if not policy.allows(address):
            raise OutboundRefused(
                f"host {host!r} resolves to {address}, a non-public address (loopback, private, link-local, "
                "multicast or reserved); an operator can allow it with ASSAY_LLM_ALLOWED_HOSTS"
            )


def _host_to_resolve(url: str, policy: OutboundPolicy) -> tuple[str, int] | None:
    host, port = split_url(url)
    return None if policy.allows_name(host, port) else (host, port)


def _unresolvable(host: str, exc: Exception) -> OutboundRefused:
    return OutboundRefused(f"host {host!r} does not resolve ({exc})")


def check_url(url: str, policy: OutboundPolicy) -> None:
    """Refuse a URL the workers may not call, resolving its host now (blocking)."""
    target = _host_to_resolve(url, policy)
    if target is None:
        return
    try:
        infos = socket.getaddrinfo(*target, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise _unresolvable(target[0], exc) from None
    check_addresses(target[0], (info[4][0] for info in infos), policy)


async def check_url_async(url: str, policy: OutboundPolicy) -> None:
    """`check_url` on the running event loop (the resolver runs in a thread), before every call."""
    target = _host_to_resolve(url, policy)
    if target is None:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(*target, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise _unresolvable(target[0], exc) from None
    check_addresses(target[0], (info[4][0] for info in infos), policy)


@functools.cache
def policy_from(allowed_hosts: str) -> OutboundPolicy:
    """The policy of an `ASSAY_LLM_ALLOWED_HOSTS` value (parsed once per value)."""
    return OutboundPolicy.parse(allowed_hosts)
