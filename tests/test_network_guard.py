"""The test suite's network guard: loopback works, anything else is blocked and fails the test that tried."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from msmkit.testing import FakeLLMServer
from msmkit.testing.network_guard import NetworkBlocked, NetworkGuard, is_loopback

TEST_NET = "192.0.2.1"  # RFC 5737 documentation address: never routed


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST", None, "",
                                  "0.0.0.0", "api.localhost"])
def test_loopback_hosts_pass(host) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", [TEST_NET, "10.0.0.1", "huggingface.co", "api.anthropic.com", "2001:db8::1",
                                  b"example.com"])
def test_other_hosts_are_not_loopback(host) -> None:
    assert not is_loopback(host)


def test_a_connect_to_another_host_is_blocked_and_recorded(network_guard: NetworkGuard) -> None:
    with network_guard.expected() as attempts:
        with socket.socket() as sock, pytest.raises(NetworkBlocked, match=TEST_NET):
            sock.connect((TEST_NET, 80))
        with pytest.raises(NetworkBlocked, match="huggingface.co"):
            socket.getaddrinfo("huggingface.co", 443)
        with socket.socket() as sock, pytest.raises(NetworkBlocked):
            sock.connect_ex((TEST_NET, 443))
    assert len(attempts) == 3 and all(TEST_NET in a or "huggingface.co" in a for a in attempts)
    assert network_guard.attempts == []


def test_async_clients_are_blocked_too(network_guard: NetworkGuard) -> None:
    async def fetch() -> None:
        async with httpx.AsyncClient(timeout=2) as client:
            await client.get(f"http://{TEST_NET}:81/")

    with network_guard.expected() as attempts, pytest.raises(httpx.ConnectError):
        asyncio.run(fetch())
    assert attempts and TEST_NET in attempts[0]


def test_loopback_servers_still_work() -> None:
    with FakeLLMServer() as server:
        response = httpx.get(f"{server.openai_base_url}/models", timeout=10)
    assert response.status_code == 200
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        with socket.create_connection(("localhost", listener.getsockname()[1]), timeout=5):
            pass


def test_the_suite_fails_a_test_that_reaches_out_even_when_the_error_is_swallowed(tmp_path: Path) -> None:
    """Runs the real conftest in a fresh pytest: a swallowed connect and a swallowed lookup each fail their test."""
    (tmp_path / "conftest.py").write_text(Path(__file__).with_name("conftest.py").read_text(encoding="utf-8"))
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(f"""
        import socket

        def test_swallowed_connect():
            try:
                with socket.socket() as sock:
                    sock.connect(("{TEST_NET}", 80))
            except OSError:
                pass  # what a library that "silently ignores" a failed lookup does

        def test_swallowed_lookup():
            try:
                socket.getaddrinfo("huggingface.co", 443)
            except OSError:
                pass

        def test_loopback_only():
            with socket.socket() as listener:
                listener.bind(("127.0.0.1", 0))
                listener.listen(1)
                socket.create_connection(listener.getsockname(), timeout=5).close()
    """), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                             str(tmp_path)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 failed, 1 passed" in result.stdout, result.stdout
    assert "FAILED test_inner.py::test_swallowed_connect" in result.stdout
    assert "FAILED test_inner.py::test_swallowed_lookup" in result.stdout
    assert f"tried to reach the network (only loopback is allowed): connect to {TEST_NET}:80" in result.stdout
    assert "tried to reach the network (only loopback is allowed): getaddrinfo('huggingface.co')" in result.stdout
