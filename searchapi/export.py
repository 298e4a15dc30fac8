"""Export formats of search results: CSV, BibTeX, RIS and JSON lines, one record at a time (for streaming).

Each formatter takes an export record: the search hit fields (without the HTML snippet) plus `abstract`,
the plain start of the document's text.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from typing import Any

CSV_COLUMNS = ("id", "title", "authors", "published", "year", "lang", "type", "source", "url", "sdgs", "score", "abstract")
# Spreadsheets run a cell starting with one of these as a formula; harvested titles are untrusted (OWASP CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BIBTEX_TYPES = {"report": "techreport", "policy-brief": "techreport", "working-paper": "techreport", "book": "book"}
RIS_TYPES = {"report": "RPRT", "policy-brief": "RPRT", "working-paper": "RPRT", "case-study": "RPRT", "book": "BOOK",
             "article": "ELEC", "news": "NEWS", "page": "ELEC"}
LATEX_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "%": r"\%", "#": r"\#",
                 "_": r"\_", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}"}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in LATEX_SPECIAL))
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "bibtex": "application/x-bibtex; charset=utf-8",
               "ris": "application/x-research-info-systems; charset=utf-8", "jsonl": "application/jsonl; charset=utf-8"}
EXTENSIONS = {"csv": "csv", "bibtex": "bib", "ris": "ris", "jsonl": "jsonl"}


def one_line(text: Any) -> str:
    """A value on one line, whitespace runs collapsed, control characters dropped."""
    return " ".join("".join(c if c.isprintable() or c.isspace() else " " for c in str(text or "")).split())


def year(record: dict[str, Any]) -> str:
    """The year of the record's date, or ''."""
    published = record.get("published") or ""
    return published[:4] if published[:4].isdigit() else ""


# -- CSV ----------------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    text = one_line(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_lines(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    """RFC 4180 CSV with a header row (CRLF line ends, quoted where needed); lists joined with `; `."""
    buf = io.StringIO()
    writer = csv.writer(buf)

    def flush() -> str:
        out = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return out

    writer.writerow(CSV_COLUMNS)
    yield flush()
    for r in records:
        writer.writerow([
            _cell(r["id"]), _cell(r.get("title")), _cell("; ".join(r.get("authors") or [])), _cell(r.get("published")),
            year(r), _cell(r.get("lang")), _cell(r.get("type")), _cell(r.get("source")), _cell(r.get("url")),
            "; ".join(str(t["sdg"]) for t in r.get("sdgs") or []), "" if r.get("score") is None else r["score"],
            _cell(r.get("abstract")),
        ])
        yield flush()


# -- BibTeX -------------------------------------------------------------------------------------------------


def latex(text: Any) -> str:
    """Text with BibTeX/LaTeX special characters escaped, so braces always balance."""
    return _LATEX_RE.sub(lambda m: LATEX_SPECIAL[m.group()], one_line(text))


def bibtex_url(url: str) -> str:
    """A URL safe inside a braced field: braces, backslashes and spaces percent-encoded, % and # escaped."""
    url = one_line(url).replace("\\", "%5C").replace("{", "%7B").replace("}", "%7D").replace(" ", "%20")
    return url.replace("%", r"\%").replace("#", r"\#")


def citation_key(doc_id: str, seen: set[str]) -> str:
    """An ASCII key from the document id, unique within the export."""
    ascii_id = unicodedata.normalize("NFKD", doc_id).encode("ascii", "ignore").decode("ascii")
    base = re.sub(r"[^A-Za-z0-9_-]+", "_", ascii_id).strip("_") or "doc"
    key, n = base, 1
    while key in seen:
        n += 1
        key = f"{base}_{n}"
    seen.add(key)
    return key


def _author(name: str) -> str:
    """One BibTeX name, braced to stay one literal author when BibTeX would misread it: an organisation whose name holds
    ` and ` (two authors), or a string of several names like `Smith, J., Doe, K.` (a PDF's Author field), which BibTeX
    refuses: "Too many commas in name" (a name takes at most two: `von Last, Jr, First`)."""
    escaped = latex(name)
    literal = re.search(r"\band\b", name, flags=re.IGNORECASE) or name.count(",") > 2
    return "{" + escaped + "}" if literal else escaped


def bibtex_entries(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    """BibTeX entries (@techreport, @book or @misc), UTF-8, one per record."""
    seen: set[str] = set()
    for r in records:
        kind = BIBTEX_TYPES.get(r.get("type") or "", "misc")
        fields: list[tuple[str, str]] = [("title", latex(r.get("title") or r["id"]))]
        if r.get("authors"):
            fields.append(("author", " and ".join(_author(a) for a in r["authors"] if one_line(a))))
        if year(r):
            fields.append(("year", year(r)))
        if r.get("published"):
            fields.append(("date", latex(r["published"])))
        if kind == "techreport":
            fields.append(("institution", latex(r.get("source") or "")))
        elif kind == "misc" and r.get("url"):
            fields.append(("howpublished", r"\url{" + bibtex_url(r["url"]) + "}"))
        if r.get("url"):
            fields.append(("url", bibtex_url(r["url"])))
        if r.get("lang"):
            fields.append(("language", latex(r["lang"])))
        if r.get("sdgs"):
            fields.append(("keywords", ", ".join(f"SDG {t['sdg']}" for t in r["sdgs"])))
        if r.get("abstract"):
            fields.append(("abstract", latex(r["abstract"])))
        fields.append(("note", latex(f"{r.get('source') or ''} document {r['id']}".strip())))
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
        yield f"@{kind}{{{citation_key(r['id'], seen)},\n{body}\n}}\n\n"


# -- RIS ----------------------------------------------------------------------------------------------------


def ris_records(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    """RIS records: `XX  - value` lines from TY to ER, one value per line."""
    for r in records:
        lines = [("TY", RIS_TYPES.get(r.get("type") or "", "GEN")), ("ID", r["id"]), ("TI", r.get("title") or r["id"])]
        lines += [("AU", a) for a in r.get("authors") or []]
        if year(r):
            lines.append(("PY", year(r)))
        if r.get("published"):
            parts = (r["published"].split("-") + ["", ""])[:3]
            lines.append(("DA", "/".join(parts) + "/"))
        for tag, key in (("LA", "lang"), ("UR", "url"), ("DP", "source")):
            if r.get(key):
                lines.append((tag, r[key]))
        lines += [("KW", f"SDG {t['sdg']}") for t in r.get("sdgs") or []]
        if r.get("abstract"):
            lines.append(("AB", r["abstract"]))
        out = [f"{tag}  - {one_line(value)}" for tag, value in lines if one_line(value)]
        yield "\n".join(out) + "\nER  - \n\n"


# -- JSON lines ---------------------------------------------------------------------------------------------


def json_lines(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One JSON object per line."""
    for r in records:
        yield json.dumps(r, ensure_ascii=False) + "\n"


FORMATTERS: dict[str, Callable[[Iterable[dict[str, Any]]], Iterator[str]]] = {
    "csv": csv_lines, "bibtex": bibtex_entries, "ris": ris_records, "jsonl": json_lines,
}
