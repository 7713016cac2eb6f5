"""A guard against network use in tests: any connection or name lookup for a host other than this machine fails.

`NetworkGuard.install()` wraps `socket.socket.connect` / `connect_ex` and the resolver functions of the socket
module (asyncio, httpx and aiohttp all go through them). A blocked call raises `NetworkBlocked` (an OSError,
so the caller fails fast instead of waiting for a timeout) and is recorded, so that a test still fails when a
library swallows the error (PEFT, for one, turns failed hub lookups into warnings). Loopback addresses, the
name `localhost` and non-IP sockets (Unix sockets, socketpair) pass. Other processes are not guarded.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Iterator
from typing import Any, Callable

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class NetworkBlocked(OSError):
    """A test tried to reach a host other than this machine."""


def is_loopback(host: Any) -> bool:
    """True for this machine: loopback or unspecified addresses, `localhost`, and no host at all."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    name = str(host).strip().strip("[]").split("%", 1)[0].lower()
    if name in LOOPBACK_NAMES or name.endswith(".localhost") or name == "":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


class NetworkGuard:
    """Records and blocks non-loopback connections while installed."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._lock = threading.Lock()
        self._undo: list[Callable[[], None]] = []

    def install(self) -> "NetworkGuard":
        guard = self

        def wrap_connect(original: Callable[..., Any]) -> Callable[..., Any]:
            def connect(sock: socket.socket, address: Any) -> Any:
                if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
                    guard.check(address[0], f"{original.__name__} to {address[0]}:{address[1]}")
                return original(sock, address)
            return connect

        def wrap_lookup(original: Callable[..., Any]) -> Callable[..., Any]:
            def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
                guard.check(host, f"{original.__name__}({host!r})")
                return original(host, *args, **kwargs)
            return lookup

        for name in ("connect", "connect_ex"):
            self._patch(socket.socket, name, wrap_connect(getattr(socket.socket, name)))
        for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex"):
            self._patch(socket, name, wrap_lookup(getattr(socket, name)))
        return self

    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        original = getattr(owner, name)
        setattr(owner, name, replacement)
        self._undo.append(lambda: setattr(owner, name, original))

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    def check(self, host: Any, what: str) -> None:
        if is_loopback(host):
            return
        with self._lock:
            self.attempts.append(what)
        raise NetworkBlocked(f"network access blocked in tests: {what} (only loopback is allowed)")

    def take(self) -> list[str]:
        """The attempts recorded so far, clearing them."""
        with self._lock:
            attempts, self.attempts = self.attempts, []
        return attempts

    @contextlib.contextmanager
    def expected(self) -> Iterator[list[str]]:
        """A block allowed to try the network (it is still blocked); yields the attempts it made."""
        before = self.take()
        made: list[str] = []
        try:
            yield made
        finally:
            made.extend(self.take())
            with self._lock:
                self.attempts[:0] = before
