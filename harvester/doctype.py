"""Guess a document's type from its title, URL and opening text."""

from __future__ import annotations

import re

# First match wins; patterns cover the English, French and Spanish wording of SSE publishers.
RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "working-paper",
        re.compile(r"working[ -]?papers?|documents? de travail|documentos? de trabajo|cahiers? de recherche", re.IGNORECASE),
    ),
    (
        "policy-brief",
        re.compile(
            r"policy[ -]?briefs?|briefing note|notes? d'orientation|note de politique|nota de pol[ií]tica|resumen de pol[ií]ticas",
            re.IGNORECASE,
        ),
    ),
    ("case-study", re.compile(r"case[ -]?stud(y|ies)|[ée]tudes? de cas|estudios? de caso", re.IGNORECASE)),
    ("report", re.compile(r"\breports?\b|\brapports?\b|\binformes?\b", re.IGNORECASE)),
)
URL_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("working-paper", re.compile(r"working[-_]?papers?|/wp[-_/]?\d", re.IGNORECASE)),
    ("policy-brief", re.compile(r"policy[-_]?briefs?", re.IGNORECASE)),
    ("case-study", re.compile(r"case[-_]?stud", re.IGNORECASE)),
    ("news", re.compile(r"/(news|actualites|noticias|blog)/", re.IGNORECASE)),
)


def guess_type(title: str, url: str, text: str = "", *, is_pdf: bool = False, default: str = "") -> str:
    """One of working-paper, policy-brief, case-study, report, news, article, page.

    Args:
        default: the kind's default when nothing matches (feed items: 'news').
    """
    # The opening of a PDF is its cover page, which names the series; the body of a web page would mislead.
    head = f"{title}\n{text[:400]}" if is_pdf else title
    for name, pattern in RULES:
        if pattern.search(head):
            return name
    for name, pattern in URL_RULES:
        if pattern.search(url):
            return name
    if is_pdf:
        return "report"
    return default or "page"
