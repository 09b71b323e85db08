"""Who may talk to workbench's servers: requests a web page makes are refused.

A page in the user's browser can send requests to any local port. Two things give it away:
an `Origin` field (a cross-site fetch) and, for DNS rebinding (the page's own name made to
resolve to this machine), a `Host` that names no address the server listens on. `HostNames`
says which Host names are this server's own, whatever `--host` is.
"""

from __future__ import annotations

import ipaddress
import socket

LOOPBACK = frozenset({"localhost", "127.0.0.1", "[::1]"})
WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})
_CACHE_LIMIT = 256  # answers kept about IP literals; a flood of made-up names must not grow it


def host_name(field: str) -> str:
    """The name part of a Host field (`name`, `name:port`, `[v6]` or `[v6]:port`),
    lower-cased, an IPv6 literal kept in its brackets."""
    field = field.strip().lower()
    if field.startswith("["):
        end = field.find("]")
        return field[: end + 1] if end > 0 else field
    name, _, _ = field.partition(":")
    return name


class HostNames:
    """The Host names a server bound to `bind` answers to: localhost and loopback always;
    the address it is bound to; bound to a wildcard (0.0.0.0, ::), any address of this
    machine, and its host name."""

    def __init__(self, bind: str) -> None:
        bind = bind.strip().lower()
        self.wildcard = bind in WILDCARDS
        names = set(LOOPBACK)
        if not self.wildcard:
            names.add(f"[{bind}]" if ":" in bind and not bind.startswith("[") else bind)
        else:
            names.add(socket.gethostname().lower())
        self.names = frozenset(names)
        self._local: dict[str, bool] = {}

    def allows(self, host: str) -> bool:
        if host in self.names:
            return True
        if not self.wildcard:
            return False
        known = self._local.get(host)
        if known is None:
            known = _is_local_address(host)
            if len(self._local) < _CACHE_LIMIT:
                self._local[host] = known
        return known


def _is_local_address(host: str) -> bool:
    """Whether an IP literal is one of this machine's addresses: binding to it succeeds
    only if it is. A name (not a literal) is never taken on trust: it may be rebound."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if address.is_loopback:
        return True
    if address.is_unspecified or address.is_multicast:
        return False
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((text, 0))
    except OSError:
        return False
    return True
