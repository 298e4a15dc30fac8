"""The store: documents, chunks, tags, facets, runs; real SQLite in tmp_path."""

from __future__ import annotations

import sqlite3

import pytest

from ssehub.errors import NotFound, StoreError
from ssehub.models import Chunk, Document, document_id, normalize_url
from ssehub.store import Filters, Store


def make_doc(source: str, key: str, text: str = "Cooperatives share profits.", **kw: object) -> Document:
    return Document(id=document_id(source, key), source_id=source, text=text, **kw)  # type: ignore[arg-type]


@pytest.fixture()
def store(tmp_path):
    s = Store(tmp_path / "s.db")
    yield s
    s.close()


def test_upsert_reports_new_unchanged_updated_and_keeps_id(store: Store) -> None:
    doc = make_doc("a", "1", title="T", lang="en", published="2021-05-01")
    assert store.upsert_document(doc) == "new"
    assert store.upsert_document(doc) == "unchanged"
    doc.text += " Members vote."
    assert store.upsert_document(doc) == "updated"
    row = store.document(doc.id)
    assert row["text"].endswith("Members vote.") and row["year"] == 2021 and row["created_at"] <= row["updated_at"]


def test_whitespace_only_change_is_unchanged(store: Store) -> None:
    doc = make_doc("a", "1", text="Fair  trade\npays fair prices.")
    store.upsert_document(doc)
    doc.text = "Fair trade pays   fair prices."
    assert store.upsert_document(doc) == "unchanged"


def test_withdrawn_documents_are_kept_but_not_searchable(store: Store) -> None:
    doc = make_doc("a", "1")
    store.upsert_document(doc)
    assert store.withdraw_document(doc.id)
    assert store.document(doc.id)["status"] == "withdrawn"
    assert store.filter_ids(Filters()) == set()
    assert store.upsert_document(doc) == "updated"  # back upstream: active again, same id
    assert store.filter_ids(Filters()) == {doc.id}


def test_unknown_document_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.document("nope")
    with pytest.raises(NotFound):
        store.set_manual_tags("nope", [5])


def test_chunks_fts_and_embedding_reuse(store: Store) -> None:
    doc = make_doc("a", "1")
    store.upsert_document(doc)
    chunks = [Chunk(doc.id, 0, "Worker cooperatives in Mondragon"), Chunk(doc.id, 1, "Fair trade coffee")]
    store.replace_chunks(doc.id, "Title words", chunks, [b"\x00" * 8, b"\x01" * 8], "m1")
    assert [r for r, _ in store.keyword_chunks('"coffee"', 10)] == [store.chunks_of(doc.id)[1]["id"]]
    assert store.keyword_chunks('"title"', 10)  # the title is indexed with every chunk
    assert set(store.embeddings_by_hash([chunks[0].hash], "m1")) == {chunks[0].hash}
    assert store.embeddings_by_hash([chunks[0].hash], "other-model") == {}
    store.replace_chunks(doc.id, "Title words", chunks[:1], [b"\x00" * 8], "m1")
    assert store.keyword_chunks('"coffee"', 10) == []
    with pytest.raises(ValueError):
        store.keyword_chunks('"unterminated', 10)


def test_manual_tags_win_and_survive_auto_retagging(store: Store) -> None:
    doc = make_doc("a", "1")
    store.upsert_document(doc)
    store.set_auto_tags(doc.id, [{"sdg": 8, "score": 0.7, "evidence": "jobs"}])
    store.set_manual_tags(doc.id, [5, 10])
    store.set_auto_tags(doc.id, [{"sdg": 12, "score": 0.9}])
    assert [t["sdg"] for t in store.tags([doc.id])[doc.id]] == [5, 10]
    assert store.filter_ids(Filters(sdg=[12])) == set()
    store.set_manual_tags(doc.id, None)
    assert [t["sdg"] for t in store.tags([doc.id])[doc.id]] == [12]


def test_filters_or_within_and_across_and_exact_facets(store: Store) -> None:
    docs = [
        make_doc("a", "1", lang="en", published="2019-01-01", type="report"),
        make_doc("a", "2", lang="fr", published="2021-01-01", type="report"),
        make_doc("b", "3", lang="es", published="2023-01-01", type="news"),
    ]
    for d, sdg in zip(docs, (5, 8, 5), strict=True):
        store.upsert_document(d)
        store.set_auto_tags(d.id, [{"sdg": sdg, "score": 0.5}])
    assert store.filter_ids(Filters(lang=["en", "fr"])) == {docs[0].id, docs[1].id}
    assert store.filter_ids(Filters(lang=["en", "es"], sdg=[5], source=["b"])) == {docs[2].id}
    assert store.filter_ids(Filters(year_from=2020, year_to=2022)) == {docs[1].id}
    facets = store.facets(filters=Filters(sdg=[5, 8], type=["report"]))
    assert facets == {"sdg": {"5": 1, "8": 1}, "lang": {"en": 1, "fr": 1}, "source": {"a": 2},
                      "type": {"report": 2}, "year": {"2019": 1, "2021": 1}}
    ids, total = store.browse(Filters(), 0, 2)
    assert total == 3 and ids == [docs[2].id, docs[1].id]
    store.set_hidden(docs[2].id, True)
    assert store.browse(Filters(), 0, 10)[1] == 2


def test_runs_record_counts_and_errors(store: Store) -> None:
    run = store.start_run(["a"])
    store.add_run_error(run, "a", "http://x/1", "timeout", "after 30 s")
    store.update_run(run, {"fetched": 3, "failed": 1}, "finished")
    got = store.run(run)
    assert got["status"] == "finished" and got["finished_at"] and got["counts"]["fetched"] == 3
    assert got["errors"][0]["reason"] == "timeout"
    assert store.last_run("a")["id"] == run and store.last_run("b") is None


def test_reopening_applies_no_migration_twice(tmp_path) -> None:
    Store(tmp_path / "s.db").upsert_document(make_doc("a", "1"))
    again = Store(tmp_path / "s.db")
    assert again.counts()["documents"] == 1
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_missing_or_corrupt_store_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(StoreError, match="ssehub harvest"):
        Store(tmp_path / "none.db", create=False)
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        Store(bad)


def test_transaction_rolls_back_the_whole_unit(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        with store.transaction():
            store.upsert_document(make_doc("a", "1"))
            store.db.execute("INSERT INTO sources (id, kind, created_at) VALUES (NULL, NULL, NULL)")
    assert store.counts()["documents"] == 0


def test_normalize_url_drops_tracking_and_fragments() -> None:
    assert normalize_url("HTTP://Example.org:80/a/index.html?utm_source=x&b=2&a=1#top") == "http://example.org/a/?a=1&b=2"
    assert document_id("s", "k") == document_id("s", "k") != document_id("t", "k")


def test_hit_locations_and_attachments_are_found_without_scanning_documents(store: Store) -> None:
    page, pdf = document_id("a", "page"), document_id("a", "pdf")
    store.upsert_document(make_doc("a", "page", url="https://a.example/p"))
    store.upsert_document(make_doc("a", "pdf", url="https://a.example/p.pdf", parent_id=page))
    others = [document_id("a", f"other-{i}") for i in range(3)]
    for i in range(3):
        store.upsert_document(make_doc("a", f"other-{i}", url=f"https://a.example/{i}"))
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    found = store.other_locations([page, pdf, *others])
    children = store.child_documents(page)
    store.db.conn.set_trace_callback(None)
    assert [(x["id"], x["relation"]) for x in found[page]] == [(pdf, "attachment")]
    assert [(x["id"], x["relation"]) for x in found[pdf]] == [(page, "page")]
    assert all(found[d] == [] for d in others)
    assert [c["id"] for c in children] == [pdf]
    # Every statement reaches its rows by index: a full scan of `documents` took 152 ms a page of hits at 1M passages.
    for sql in statements:
        plan = store.db.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
        assert not [row for row in plan if row[3].startswith("SCAN")], (sql, plan)
