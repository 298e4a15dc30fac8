"""Language of a document, detected from its text only (never from the URL or `<html lang>`)."""

from __future__ import annotations

from functools import lru_cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

MIN_CHARS = 20  # below this a guess is noise
SAMPLE_CHARS = 2500  # enough for a confident guess; py3langid's cost grows with the sample (~12 ms at 5,000 chars)


@lru_cache(maxsize=1)
def _identifier() -> LanguageIdentifier:
    # Unrestricted on purpose: SSE literature comes in many languages, and py3langid is accurate past a sentence.
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> str:
    """Two-letter ISO 639-1 code of the text's language, or '' when the text is too short to tell."""
    sample = " ".join(text[:SAMPLE_CHARS].split())
    if len(sample) < MIN_CHARS:
        return ""
    lang, _prob = _identifier().classify(sample)
    return lang[:2]
