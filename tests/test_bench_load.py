"""bench/load.py: both load tools count requests, errors by status and client CPU against a small loopback server."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
import uvicorn

from bench.load import run_load


async def _app(scope: dict, receive: object, send: object) -> None:
    """200 for `q=ok`, 503 for anything else."""
    if scope["type"] != "http":
        return
    ok = parse_qs(scope["query_string"].decode()).get("q") == ["ok"]
    await send({"type": "http.response.start", "status": 200 if ok else 503, "headers": [(b"content-length", b"2")]})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"{}"})  # type: ignore[operator]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_app, host="127.0.0.1", port=port, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.mark.parametrize("tool", ["httpx", "wrk"])
def test_load_counts_requests_and_errors_by_status(url: str, tool: str) -> None:
    if tool == "wrk" and shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (`make bench` installs it)")
    out = run_load(url, clients=4, seconds=1, queries=["ok", "ok", "bad"], tool=tool)
    assert out["tool"] == tool and out["requests"] >= 3 and out["requests_per_s"] > 0
    # every third request is the 503 one, give or take the requests in flight at the end
    assert set(out["statuses"]) == {"503"} and out["errors"] == out["statuses"]["503"]
    assert abs(out["errors"] - out["requests"] / 3) <= 4 + 0.05 * out["requests"]
    assert out["p95_ms"] >= out["p50_ms"] > 0 and out["client_cpu_ms"] >= 0
