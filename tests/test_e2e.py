"""End to end, as a user runs it: `ssehub demo --no-serve` (real crawl of the bundled sites on 127.0.0.1,
the real model, FAISS), then `ssehub serve` and `ssehub search` against the result."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e
MANIFEST = Path(__file__).resolve().parent.parent / "ssehub" / "demo" / "sites" / "MANIFEST.json"


def ssehub(data: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "SSEHUB_DATA_DIR": str(data)}
    return subprocess.run([sys.executable, "-m", "ssehub", *args], capture_output=True, text=True, timeout=timeout, env=env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("demo") / "data"
    out = ssehub(data, "demo", "--no-serve")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "indexed in" in out.stdout
    return data


@pytest.fixture(scope="module")
def server(demo_data: Path):
    port = free_port()
    env = {**os.environ, "SSEHUB_DATA_DIR": str(demo_data)}
    proc = subprocess.Popen([sys.executable, "-m", "ssehub", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("ssehub serve did not come up: " + (proc.stderr.read() if proc.stderr else ""))
    yield base
    proc.terminate()
    proc.wait(timeout=30)


def test_demo_harvested_every_manifest_document(demo_data: Path) -> None:
    from ssehub.store import Store

    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    counts = Store(demo_data / "ssehub.db").counts()
    assert counts["documents"] >= len(manifest) >= 40
    assert counts["indexed"] == counts["documents"] and counts["tagged"] >= 0.8 * counts["documents"]


def test_search_api_returns_ranked_tagged_documents_with_facets(server: str) -> None:
    body = httpx.get(f"{server}/api/search", params={"q": "cooperative"}, timeout=60).json()
    assert body["total"] >= 5 and len(body["results"]) == 10
    scores = [hit["score"] for hit in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert all(hit["sdgs"] for hit in body["results"][:5])
    assert "cooperative" in body["results"][0]["snippet"].lower() or "<mark>" in body["results"][0]["snippet"]
    assert set(body["facets"]) == {"sdg", "lang", "source", "type", "year"}
    assert sum(body["facets"]["source"].values()) == body["total"]
    assert {"en", "fr", "es"} <= set(body["facets"]["lang"])


def test_cli_search_prints_the_api_shape(server: str, demo_data: Path) -> None:
    out = ssehub(demo_data, "search", "fair trade", "--sdg", "12", "--json", timeout=300)
    assert out.returncode == 0, out.stderr
    cli = json.loads(out.stdout)
    api = httpx.get(f"{server}/api/search", params={"q": "fair trade", "sdg": 12}, timeout=60).json()
    assert set(cli) == set(api) and cli["total"] == api["total"] > 0
    assert [h["id"] for h in cli["results"]] == [h["id"] for h in api["results"]]
    assert all(any(t["sdg"] == 12 for t in hit["sdgs"]) for hit in cli["results"])


def test_status_reports_the_demo_store(demo_data: Path) -> None:
    out = ssehub(demo_data, "status")
    assert out.returncode == 0, out.stderr
    assert "sources 3," in out.stdout and "index: {" in out.stdout
