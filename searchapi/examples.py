"""Example responses shown in the OpenAPI document, one per endpoint (trimmed real output of the demo corpus)."""

from __future__ import annotations

from typing import Any

HIT = {
    "id": "unsse:2f9c1a", "title": "Women's cooperatives and decent work", "url": "https://unsse.org/2019/11/21/women-coops/",
    "source": "unsse", "lang": "en", "published": "2019-11-21", "type": "report", "authors": ["Maria Lopes"],
    "sdgs": [{"sdg": 8, "score": 0.91}, {"sdg": 5, "score": 0.74}],
    "snippet": "… women's <mark>cooperatives</mark> in Senegal give members a stable income …", "score": 0.83,
}
FACETS = {"sdg": {"8": 12, "5": 7}, "lang": {"en": 30, "fr": 9}, "source": {"unsse": 9, "ripess": 30},
          "type": {"report": 5, "article": 34}, "year": {"2019": 4, "2022": 11}}
SEARCH = {"query": "women cooperatives", "total": 42, "next_cursor": "eyJvIjoxMCwiaCI6ImFiYyJ9", "results": [HIT], "facets": FACETS}
DOCUMENT = {
    **{k: v for k, v in HIT.items() if k not in ("snippet", "score", "sdgs")},
    "source_id": "unsse", "text": "Women's cooperatives in Senegal …", "year": 2019, "parent_id": None, "licence": "",
    "extra": {}, "hash": "9b1e…", "status": "active", "hidden": False, "manual_sdgs": None,
    "created_at": "2024-05-02T10:00:00+00:00", "updated_at": "2024-05-02T10:00:00+00:00",
    "sdgs": [{"sdg": 8, "score": 0.91, "evidence": "Members share a stable income from decent work.", "targets": ["8.5"],
              "origin": "auto"}],
}
SDGS = [{"sdg": 1, "short": "No poverty", "title": "End poverty in all its forms everywhere", "colour": "#E5243B", "documents": 14}]
STATS = {"documents": 39, **FACETS}
TAG = {"sdgs": [{"sdg": 5, "score": 0.81, "evidence": "Women cooperatives improve gender equality."}]}
HEALTH = {"status": "ok", "documents": 39, "chunks": 412, "index": {"model": "all-MiniLM-L6-v2", "dim": 384, "count": 412},
          "warm": {"catalog": True, "keyword": True}}
SOURCE = {"id": "unsse", "name": "UNTFSSE Knowledge Hub", "kind": "feed", "url": "https://unsse.org/feed/", "enabled": True,
          "delay": 1.0, "languages": ["en"], "in_file": True, "origin": "yaml", "document_count": 120,
          "last_run": {"id": 7, "status": "finished", "started_at": "2024-05-02T10:00:00+00:00",
                       "finished_at": "2024-05-02T10:04:10+00:00", "counts": {"fetched": 130, "new": 4, "failed": 1},
                       "errors": 1}}
SOURCES = {"file": "sources.yaml", "sources": [SOURCE], "problems": []}
RUN = {"id": 12, "kind": "harvest-request", "sources": ["unsse"], "status": "running", "started_at": "2024-05-02T10:00:00+00:00",
       "finished_at": None, "counts": {"fetched": 40, "new": 3, "failed": 1},
       "errors": [{"source_id": "unsse", "url": "https://unsse.org/x.pdf", "reason": "http_404", "detail": "", "at": "…"}],
       "runs": [{"id": 13, "sources": ["unsse"], "status": "running", "started_at": "…", "finished_at": None,
                 "counts": {"fetched": 40}}]}
CSV = "id,title,authors,published,year,lang,type,source,url,sdgs,score,abstract\r\nunsse:2f9c1a,Women's cooperatives,Maria Lopes,..."
BIBTEX = "@techreport{unsse_2f9c1a,\n  title = {Women's cooperatives and decent work},\n  author = {Maria Lopes},\n  year = {2019},\n}\n"
RIS = "TY  - RPRT\nID  - unsse:2f9c1a\nTI  - Women's cooperatives and decent work\nAU  - Maria Lopes\nPY  - 2019\nER  - \n"
JSONL = '{"id": "unsse:2f9c1a", "title": "Women\'s cooperatives and decent work", "sdgs": [{"sdg": 8, "score": 0.91}]}\n'
ATOM = '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom"><title>SDG 5: Gender equality</title>…</feed>'


def json_example(example: Any, description: str = "Success") -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route answering JSON."""
    return {200: {"description": description, "content": {"application/json": {"example": example}}}}


def curator(example: Any, status: int = 200, description: str = "Success") -> dict[int | str, dict[str, Any]]:
    """`responses=` for a curator route: its example plus the 401 every curator route can answer."""
    return {
        status: {"description": description, "content": {"application/json": {"example": example}}},
        401: {"description": "No valid curator key", "content": {"application/json": {"example": {
            "detail": "a valid curator key is needed: send `Authorization: Bearer <key>`"}}}},
    }
