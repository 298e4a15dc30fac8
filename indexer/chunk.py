"""Split a document's text into overlapping passages that fit the embedding model, on sentence boundaries."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

CountTokens = Callable[[Sequence[str]], list[int]]

# A sentence ends at . ! ? … (optionally followed by a closing quote or bracket) before whitespace and
# an upper-case letter, digit, opening quote or bracket; abbreviations like "e.g. the" are left whole.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+(?=[\"'“‘(\[¿¡]?[A-ZÀ-ÖØ-Þ0-9])")
_PARAGRAPH = re.compile(r"\n\s*\n+")
_WORDS = re.compile(r"\S+")


def sentences(text: str) -> list[str]:
    """Sentences of a text, paragraph by paragraph; whitespace inside a sentence is collapsed."""
    out: list[str] = []
    for para in _PARAGRAPH.split(text):
        para = " ".join(para.split())
        if para:
            out.extend(s.strip() for s in _SENTENCE_END.split(para) if s.strip())
    return out


def _split_long(sentence: str, tokens: int, max_tokens: int, count_tokens: CountTokens) -> list[str]:
    """Cut an over-long sentence into runs of words that each fit, estimating tokens per word from the whole."""
    words = _WORDS.findall(sentence)
    per_word = max(tokens / max(len(words), 1), 1e-6)
    pieces: list[str] = []
    start = 0
    while start < len(words):
        # Start from the estimate, then shrink until the real count fits (rare: words differ in length).
        size = max(1, int(max_tokens / per_word))
        while True:
            piece = " ".join(words[start : start + size])
            if size == 1 or count_tokens([piece])[0] <= max_tokens:
                break
            size = max(1, int(size * 0.85))
        pieces.append(piece)
        start += size
    return pieces


def chunk_text(text: str, count_tokens: CountTokens, max_tokens: int = 200, overlap: int = 40) -> list[str]:
    """Pack sentences into chunks of at most `max_tokens` tokens, consecutive chunks sharing about `overlap` tokens.

    Args:
        count_tokens: the embedder's batched token counter (`Embedder.count_tokens`).
        overlap: tokens of whole trailing sentences repeated at the start of the next chunk: sentences are
            carried until about `overlap` tokens (at most 1.5 times it), and never so many that the next chunk
            would overflow; sentence boundaries win over an exact overlap.
    """
    sents = sentences(text)
    if not sents:
        return []
    counts = count_tokens(sents)
    # Over-long sentences become word runs; one space between pieces costs no extra word-piece.
    units: list[tuple[str, int]] = []
    for sent, n in zip(sents, counts, strict=True):
        if n <= max_tokens:
            units.append((sent, n))
        else:
            pieces = _split_long(sent, n, max_tokens, count_tokens)
            units.extend(zip(pieces, count_tokens(pieces), strict=True))

    chunks: list[str] = []
    current: list[tuple[str, int]] = []
    size = 0
    fresh = 0  # units in `current` not already in the previous chunk
    for unit in units:
        if current and size + unit[1] > max_tokens:
            chunks.append(" ".join(u[0] for u in current))
            # Carry trailing sentences worth at most `overlap` tokens into the next chunk.
            carried: list[tuple[str, int]] = []
            carried_size = 0
            for prev in reversed(current):
                if carried_size >= overlap or carried_size + prev[1] > 1.5 * overlap:
                    break
                if carried_size + prev[1] + unit[1] > max_tokens:
                    break
                carried.insert(0, prev)
                carried_size += prev[1]
            current, size, fresh = carried, carried_size, 0
        current.append(unit)
        size += unit[1]
        fresh += 1
    if current and fresh:
        chunks.append(" ".join(u[0] for u in current))
    return chunks
