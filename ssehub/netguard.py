"""SSRF guard: a source URL given through the API must not lead the harvester to private, loopback or link-local hosts.

The host is resolved and every address it resolves to must be global unicast. Literal IPs in any spelling that the
resolver accepts (`127.1`, `2130706433`, `0x7f.0.0.1`, `[::ffff:127.0.0.1]`) are caught because the check looks at
what `getaddrinfo` returns, not at the text. A host that does not resolve now is let through (the harvester cannot
reach it either, and curators add sources before their DNS is live); the check is not a defence against DNS
rebinding, which only a check at connect time in the harvester would be. The operator's own sources.yaml is trusted
and never checked.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

log = logging.getLogger(__name__)
Resolver = Callable[[str], list[str]]


def resolve(host: str) -> list[str]:
    """Every address a host name (or literal) resolves to; empty when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        return []
    return sorted({str(info[4][0]).split("%", 1)[0] for info in infos})


def address_kind(address: str) -> str | None:
    """Why an address is not a public one ('loopback', 'private', ...), or None for a global unicast address."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-global"


def url_problem(url: str, resolver: Resolver = resolve) -> str | None:
    """Why the harvester must not be sent to this URL, or None when it may."""
    try:
        host = urlsplit(url).hostname
    except ValueError as exc:
        return f"{url!r} is not a valid URL ({exc})"
    if not host:
        return f"{url!r} has no host"
    for address in resolver(host):
        kind = address_kind(address)
        if kind:
            return f"{url} points at a {kind} address ({address})"
    return None


def source_url_problems(urls: Iterable[tuple[str, str]], label: str, resolver: Resolver = resolve) -> list[str]:
    """One message per (field, URL) of a source that points at a non-public address, naming the setting that allows it."""
    out = []
    for field, url in urls:
        problem = url_problem(url, resolver)
        if problem:
            log.warning("refused source %s: %s", label, problem)
            out.append(f"source {label}: field {field}: {problem}; private, loopback and link-local hosts are refused "
                       "for sources added through the API (set SSEHUB_ALLOW_PRIVATE_SOURCES=true to allow them)")
    return out
