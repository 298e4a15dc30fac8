"""schemathesis against the app's own OpenAPI document: generated requests to every operation, never a 5xx.

Curator operations get a valid key (so their bodies are parsed and validated, not just refused), except starting a
harvest, which would spawn crawls; it is still called, and must answer 401 without the key.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from conftest import make_search_corpus
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from searchapi.app import create_app
from ssehub.settings import Settings

pytestmark = pytest.mark.timeout(300)
KEY = "schema-test-key"


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    tmp = tmp_path_factory.mktemp("schema")
    corpus = make_search_corpus(tmp / "data")
    sources = tmp / "sources.yaml"
    sources.write_text("sources:\n  - id: alpha\n    kind: feed\n    url: https://alpha.example/feed\n", encoding="utf-8")
    app_settings = Settings(data_dir=tmp / "data", sources=sources, model_path="hashing", curator_keys=KEY)
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(app_settings, embedder=corpus.embedder))
    corpus.store.close()


EXAMPLES = 30  # per operation; about 20 operations
# Operations allowed to answer 5xx: none (a huge run id once did; bounded since).
KNOWN_BUGS: set[str] = set()


def test_no_operation_answers_5xx(api_schema: schemathesis.BaseSchema) -> None:
    """Hypothesis drives each operation's strategy directly (the lazy pytest loader of schemathesis 4.32 breaks on pytest 9)."""
    tried: dict[str, int] = {}
    failed: dict[str, str] = {}
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:  # called at once below, so the loop variable is current
            spawns = case.method.upper() == "POST" and case.path == "/api/harvest"
            response = case.call(headers=None if spawns else {"Authorization": f"Bearer {KEY}"})
            tried[operation.label] = tried.get(operation.label, 0) + 1  # noqa: B023
            case.validate_response(response, checks=[not_a_server_error])
            assert response.status_code < 500, response.text
            if spawns:
                assert response.status_code == 401

        try:
            check()
        except Exception as exc:  # noqa: BLE001 - collected, so one operation's bug does not hide another's
            failed[operation.label] = f"{type(exc).__name__}: {str(exc)[:300]}"
    print(f"schemathesis: {sum(tried.values())} requests over {len(tried)} operations; 5xx on {sorted(failed)}")
    assert len(tried) >= 15
    assert set(failed) <= KNOWN_BUGS, {k: v for k, v in failed.items() if k not in KNOWN_BUGS}


def test_the_schema_covers_the_api(api_schema: object) -> None:
    paths = {op.ok().path for op in api_schema.get_all_operations()}  # type: ignore[attr-defined]
    assert {"/api/search", "/api/documents/{doc_id}", "/api/sources", "/api/tag", "/api/export"} <= paths, paths


def test_a_huge_run_id_is_a_4xx(api_schema: schemathesis.BaseSchema) -> None:
    from fastapi.testclient import TestClient

    with TestClient(api_schema.app, raise_server_exceptions=False) as client:  # type: ignore[attr-defined]
        r = client.get("/api/harvest/runs/99999999999999999999", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code < 500, r.text
