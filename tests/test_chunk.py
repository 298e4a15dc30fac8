"""Chunking: token limits with the real tokenizer, overlap, sentence boundaries, long sentences, empty text."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from indexer.chunk import chunk_text, sentences
from ssehub.embed import HashingEmbedder

PARAGRAPHS = [
    "Social and solidarity economy organisations put people before capital. They include cooperatives, mutuals, "
    "associations and social enterprises. Their members share decisions democratically.",
    "In West Africa, women's cooperatives process shea nuts into butter. The income pays school fees and health "
    "care. Members also save together and lend to each other at low rates!",
    "Is the model scalable? Researchers disagree. Some point to federations of cooperatives; others to public "
    "procurement that favours local producers. Both need patient capital.",
] * 6
TEXT = "\n\n".join(PARAGRAPHS)


def test_chunks_respect_the_limit_with_the_real_tokenizer(minilm_embedder) -> None:
    count = minilm_embedder.count_tokens
    chunks = chunk_text(TEXT, count, max_tokens=60, overlap=15)
    assert len(chunks) > 5
    assert max(count(chunks)) <= 60
    assert all(c.strip() for c in chunks)


def test_chunks_fit_the_model_on_real_paragraphs(minilm_embedder) -> None:
    dev = Path(__file__).resolve().parents[2] / "shared" / "data" / "sdg" / "osdg_dev_600.csv"
    if dev.exists():
        with dev.open(encoding="utf-8") as f:
            text = "\n\n".join(r["text"] for r in list(csv.DictReader(f))[:40])
    else:
        text = TEXT * 3
    chunks = chunk_text(text, minilm_embedder.count_tokens, max_tokens=200, overlap=40)
    counts = minilm_embedder.count_tokens(chunks)
    assert max(counts) <= 200 < minilm_embedder.max_tokens + 1
    assert sum(counts) >= len(minilm_embedder.count_tokens([text])) and len(chunks) > 3


def test_consecutive_chunks_overlap_by_whole_sentences() -> None:
    count = HashingEmbedder().count_tokens
    chunks = chunk_text(TEXT, count, max_tokens=50, overlap=12)
    assert len(chunks) > 3
    for a, b in zip(chunks, chunks[1:], strict=False):
        sa, sb = sentences(a), sentences(b)
        shared = max(k for k in range(len(sb)) if k == 0 or sa[-k:] == sb[:k])
        assert shared >= 1, (a[-80:], b[:80])
        assert sum(count(sb[:shared])) <= 1.5 * 12


def test_chunks_end_on_sentence_boundaries() -> None:
    chunks = chunk_text(TEXT, HashingEmbedder().count_tokens, max_tokens=50, overlap=12)
    assert all(c.rstrip()[-1] in ".!?" for c in chunks)
    all_sentences = set(sentences(TEXT))
    for c in chunks:
        assert set(sentences(c)) <= all_sentences  # no sentence was cut


def test_every_sentence_is_kept_in_order() -> None:
    chunks = chunk_text(TEXT, HashingEmbedder().count_tokens, max_tokens=50, overlap=0)
    assert " ".join(chunks) == " ".join(TEXT.split())


def test_a_sentence_longer_than_the_limit_is_split_on_words(minilm_embedder) -> None:
    words = [f"cooperative{i % 37} members" for i in range(400)]
    long_sentence = " ".join(words)
    count = minilm_embedder.count_tokens
    chunks = chunk_text("Short intro. " + long_sentence + ". Short end.", count, max_tokens=100, overlap=20)
    assert len(chunks) >= 4
    assert max(count(chunks)) <= 100
    joined = " ".join(chunks)
    assert "cooperative36 members" in joined and joined.startswith("Short intro.")


@pytest.mark.parametrize("text", ["", "   ", "\n\n \n"])
def test_empty_text_gives_no_chunks(text: str) -> None:
    assert chunk_text(text, HashingEmbedder().count_tokens) == []


def test_a_short_document_is_one_chunk() -> None:
    text = "A short note.\n\nOn two   lines."
    assert chunk_text(text, HashingEmbedder().count_tokens) == ["A short note. On two lines."]


def test_abbreviations_do_not_end_sentences() -> None:
    assert sentences("Firms, e.g. cooperatives, differ. Next one.") == ["Firms, e.g. cooperatives, differ.", "Next one."]
