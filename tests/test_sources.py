"""sources.yaml validation: every message names the source and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssehub.errors import ConfigError
from ssehub.sources import load_sources, parse_sources

REPO = Path(__file__).resolve().parent.parent


def test_repository_sources_file_is_valid() -> None:
    sources = load_sources(REPO / "sources.yaml")
    assert {"socioeco", "unsse", "ripess"} <= {s.id for s in sources}


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"id": "Bad Id", "kind": "feed", "url": "https://x.org/feed"}, "source Bad Id: field id: must match"),
        ({"id": "a", "kind": "ftp", "url": "https://x.org/"}, "source a: field kind:"),
        ({"id": "a", "kind": "feed", "url": "x.org"}, "source a: field url: 'x.org' is not an http(s) URL"),
        ({"id": "a", "kind": "feed"}, "source a: field url: required"),
        ({"id": "a", "kind": "crawl", "url": "https://x.org/"}, "source a: field documents:"),
        ({"id": "a", "kind": "crawl", "url": "https://x.org/", "documents": ["(unclosed"]}, "source a: field documents:"),
        ({"id": "a", "kind": "feed", "url": "https://x.org/", "delay": -1}, "source a: field delay:"),
        ({"id": "a", "kind": "feed", "url": "https://x.org/", "dealy": 1}, "source a: field dealy: unknown field"),
        ({"kind": "feed", "url": "https://x.org/"}, "source #1: field id: required field is missing"),
    ],
)
def test_each_problem_names_source_and_field(entry: dict, expected: str) -> None:
    good, problems = parse_sources({"sources": [entry]})
    assert good == []
    assert any(expected in p for p in problems), problems


def test_duplicates_and_non_mappings_are_reported_and_good_entries_kept() -> None:
    good, problems = parse_sources({"sources": [
        {"id": "a", "kind": "feed", "url": "https://x.org/feed"},
        {"id": "a", "kind": "feed", "url": "https://y.org/feed"},
        "just a string",
    ]})
    assert [s.id for s in good] == ["a"]
    assert any("duplicate id" in p for p in problems) and any("must be a mapping" in p for p in problems)


@pytest.mark.parametrize("text", ["sources: [", "- a\n- b", "sources: 5", "!!python/object/apply:os.system ['echo hi']"])
def test_bad_yaml_is_a_config_error(tmp_path, text: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_sources(path)


def test_missing_file_says_what_to_do(tmp_path) -> None:
    with pytest.raises(ConfigError, match="--sources"):
        load_sources(tmp_path / "none.yaml")
