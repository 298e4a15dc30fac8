"""FaissIndex searches on one OpenMP thread in whichever thread calls it (request and helper threads included)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ssehub.ann import FaissIndex

faiss = pytest.importorskip("faiss")


def test_search_from_a_new_thread_uses_one_openmp_thread() -> None:
    if faiss.omp_get_max_threads() < 2:
        faiss.omp_set_num_threads(2)  # the thread that creates others hands its setting down: make two the default
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((500, 16)).astype(np.float32)
    index = FaissIndex(16)
    index.add(np.arange(500), vectors)
    seen: dict[str, int] = {}

    def search() -> None:
        seen["before"] = faiss.omp_get_max_threads()
        ids = index.search(vectors[:2], 3)[1]
        seen["after"] = faiss.omp_get_max_threads()
        seen["first"] = int(ids[0][0])

    thread = threading.Thread(target=search)
    thread.start()
    thread.join()
    assert seen["after"] == 1
    assert seen["first"] == 0  # and it still finds the vector itself
