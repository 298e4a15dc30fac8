"""`ssehub serve --workers N`: several server processes answer the same API over one store and index."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from conftest import make_search_corpus


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_with_two_workers_answers_searches_and_stops(tmp_path: Path) -> None:
    corpus = make_search_corpus(tmp_path / "data")
    corpus.store.close()
    port = _free_port()
    env = {**os.environ, "SSEHUB_MODEL_PATH": "hashing", "SSEHUB_RATE_LIMIT": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssehub", "--data", str(tmp_path / "data"), "serve", "--port", str(port), "--workers", "2"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            try:
                if httpx.get(url + "/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        bodies = [httpx.get(url + "/api/search", params={"q": "cooperatives", "mode": "keyword"}, timeout=30).json()
                  for _ in range(6)]
        assert bodies[0]["total"] > 0 and all(b == bodies[0] for b in bodies)  # every worker gives the same answer
        assert "hidden-1" not in {h["id"] for h in bodies[0]["results"]}
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) >= 2  # the workers (plus multiprocessing's resource tracker)
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode is not None


def test_serve_rejects_a_bad_worker_count(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "ssehub", "--data", str(tmp_path), "serve", "--workers", "0"],
                          check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "--workers" in done.stderr and "Traceback" not in done.stderr
