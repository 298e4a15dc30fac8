"""Text and metadata out of HTML pages (trafilatura, with <meta>/<title>/<time> fallbacks) and PDFs (pypdf)."""

from __future__ import annotations

import io
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import lxml.html
import trafilatura
from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError
from trafilatura.readability_lxml import Document as Readability
from trafilatura.utils import load_html

logger = logging.getLogger(__name__)

MIN_WORDS = 5  # fewer words than this is a title or a menu, not a document
# Below this many words trafilatura may have kept a teaser or a caption instead of the article: readability gets a say.
# Its text must be at least this long too, so a cookie banner or a footer never becomes a document.
SHORT_WORDS = 50
MAX_PDF_PAGES = 500

DATE_META = ("citation_publication_date", "citation_date", "article:published_time", "dc.date", "dcterms.date", "date")
AUTHOR_META = ("citation_author", "dc.creator", "author", "article:author")
TITLE_META = ("citation_title", "og:title", "dc.title")


class ExtractionError(Exception):
    """A page or file that yields no usable document; `reason` is the counted failure reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class Extracted:
    """Text and metadata of one document."""

    text: str
    title: str = ""
    published: str | None = None
    authors: list[str] = field(default_factory=list)


def iso_date(value: Any) -> str | None:
    """YYYY-MM-DD (or YYYY) from a datetime, a struct_time, an ISO-ish string or a PDF date; None if unusable."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, time.struct_time):
        return time.strftime("%Y-%m-%d", value)
    s = str(value).strip().removeprefix("D:")
    if m := re.match(r"^(\d{4})-(\d{2})-(\d{2})", s):
        return "-".join(m.groups())
    if m := re.match(r"^(\d{4})(\d{2})(\d{2})", s):  # PDF dates: 20210304...
        return "-".join(m.groups())
    if m := re.match(r"^(\d{4})-(\d{2})$", s):
        return f"{m.group(1)}-{m.group(2)}-01"
    if re.match(r"^\d{4}$", s):
        return s
    return None


def split_authors(value: str | None) -> list[str]:
    """Author names from an 'A; B' string (not split on 'and': organisation names contain it)."""
    if not value:
        return []
    parts = re.split(r"\s*;\s*", value.strip())
    return [p.strip(" ,") for p in parts if p.strip(" ,")]


def _meta(tree: Any, names: tuple[str, ...]) -> list[str]:
    """Values of <meta name|property=...> in the order of `names`."""
    out: list[str] = []
    for name in names:
        for el in tree.xpath(
            "//meta[translate(@name,'ABCDEFGHIJKLMNOPQRSTUVWXYZ','abcdefghijklmnopqrstuvwxyz')=$n"
            " or translate(@property,'ABCDEFGHIJKLMNOPQRSTUVWXYZ','abcdefghijklmnopqrstuvwxyz')=$n]",
            n=name,
        ):
            content = (el.get("content") or "").strip()
            if content:
                out.append(content)
    return out


SINGLE_BYTE = ("latin-1", "latin1", "iso-8859-1", "iso8859-1", "cp1252", "windows-1252", "ascii", "us-ascii")


def decode_html(body: bytes, encoding: str) -> str:
    """HTML bytes as text, surviving a wrong charset declaration; a body that is no text at all is `bad_encoding`.

    Pages of the old French/Spanish sites are windows-1252 under a `charset=utf-8` header (a server default), and
    UTF-8 under an ISO-8859-1 one: decoding strictly as declared dropped the first kind as undecodable and turned the
    second into mojibake. A body that is valid UTF-8 with multi-byte characters is UTF-8 whatever the header says
    (a Latin-1 text almost never is); one whose non-ASCII bytes are not UTF-8 is windows-1252 (Latin-1 for the five
    bytes cp1252 leaves undefined), provided it is mostly ASCII, as Latin-script prose is.
    """
    declared = (encoding or "utf-8").lower()
    if declared in SINGLE_BYTE and _is_utf8_text(body):
        return body.decode("utf-8")
    try:
        return body.decode(declared)
    except (UnicodeDecodeError, LookupError):
        pass
    text = body.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    if bad > sum(1 for ch in text if ch > "\x7f" and ch != "\ufffd"):
        # Fewer well-formed UTF-8 characters than broken sequences: a single-byte encoding, not damaged UTF-8.
        high = sum(1 for b in body if b > 0x7F)
        if high <= len(body) * 0.3:
            return _single_byte(body)
    # A few stray bytes are survivable; a page of replacement characters is not a text.
    if bad > max(10, len(text) // 100):
        raise ExtractionError("bad_encoding", f"not decodable as {encoding or 'utf-8'} nor as windows-1252 text")
    return text


def _is_utf8_text(body: bytes) -> bool:
    """Whether a body decodes as UTF-8 and has multi-byte characters (pure ASCII reads the same either way)."""
    try:
        return body.decode("utf-8") != body.decode("latin-1")
    except UnicodeDecodeError:
        return False


def _single_byte(body: bytes) -> str:
    """windows-1252, with its five undefined bytes read as Latin-1."""
    chunks = re.split(rb"([\x81\x8d\x8f\x90\x9d]+)", body)  # odd positions: the undefined bytes
    return "".join(chunk.decode("latin-1" if i % 2 else "cp1252") for i, chunk in enumerate(chunks))


TABLE_RULE = re.compile(r"^\s*\|?(\s*:?-{3,}:?\s*\|)+\s*:?-*:?\s*\|?\s*$")


def tidy_text(text: str, title: str) -> str:
    """Plain prose for search: no repeated title line, table rows as `cell; cell` without Markdown rules."""
    lines = []
    for line in text.splitlines():
        if TABLE_RULE.match(line):
            continue
        if line.lstrip().startswith("|") and line.rstrip().endswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            line = "; ".join(c for c in cells if c)
        lines.append(line)
    if lines and title and " ".join(lines[0].split()).casefold() == " ".join(title.split()).casefold():
        lines = lines[1:]
    return "\n".join(lines).strip()


def readability_text(html: str) -> str:
    """Main text by readability (the port bundled with trafilatura), one line per block; '' when it finds none."""
    try:
        tree = load_html(html)  # copes with encoding declarations that lxml refuses in a str
        if tree is None:
            return ""
        summary = Readability(tree, min_text_length=25).summary()
        return extract_fragment(summary).text
    except Exception:  # readability gives up in many ways on odd pages; the first extractor's answer then stands
        return ""


def main_text(html: str, url: str, second: bool = True) -> str:
    """trafilatura (precision first); readability when trafilatura finds nothing or very little and readability more."""
    text = trafilatura.extract(
        html, url=url, output_format="txt", include_comments=False, include_tables=True, favor_precision=True
    ) or ""
    words = len(text.split())
    if second and words < SHORT_WORDS:
        other = readability_text(html)
        if len(other.split()) >= max(SHORT_WORDS, words + 1):
            logger.debug("%s: readability found %d words where trafilatura found %d", url, len(other.split()), words)
            return other
    return text


# A page that answers 200 but says it is missing, or shows a log-in or cookie wall instead of the document. Only short
# pages are judged (a real document may well discuss "404 errors" or logging in): stored, such a page would replace the
# document it stands in for on the next harvest.
WALL_WORDS = 120
# A title that is only an error name, as a part of its own: "404", "Error 404", "Page not found", "Erreur 404 -
# Page introuvable | Site". "Not found in the statistics: informal workers" is a document's title, not an error page's.
NOT_FOUND_TITLE = re.compile(
    r"\W*((error|erreur)\s*)?404(\s*(error|erreur|not found))?\W*"
    r"|\W*((the\s+)?(page|file|document|resource)\s+)?not found\W*"
    r"|\W*(page (introuvable|non trouvée)|página no (encontrada|existe)|pagina non trovata)\W*",
    re.IGNORECASE,
)
TITLE_PARTS = re.compile(r"\s+[|\u2013\u2014-]\s+|:\s+")
NOT_FOUND_TEXT = re.compile(
    r"\b(page|file|document|article|resource|content|contenu|ressource|página|pagina)s?\b.{0,40}"
    r"(\b(not (be )?found|doesn'?t exist|does not exist|no longer exists?|could not be found|cannot be found|can'?t be found|"
    r"introuvable|non trouvée|no (existe|se encuentra|fue encontrada)|non (esiste|trovata))\b|n'existe (pas|plus))"
    r"|\b(error 404|404 error|erreur 404)\b",
    re.IGNORECASE,
)
LOGIN = re.compile(
    r"\b(log ?in|sign ?in|connectez-vous|identifiez-vous|inicie sesión|inicia sesión|accedi)\b.{0,30}"
    r"\b(to (view|read|access|see|continue|download)|pour (lire|accéder|voir|continuer|télécharger)|para (ver|leer|acceder))"
    r"|\b(must|need to|have to|please) (be )?(log(ged)? ?in|sign(ed)? ?in)\b"
    r"|\b(members only|réservé aux (membres|adhérents|abonnés)|solo para (miembros|socios)|subscribe to (read|continue))",
    re.IGNORECASE | re.DOTALL,
)
COOKIES = re.compile(  # the wall's own words: "we use cookies", "cookie settings", "accept all cookies"
    r"\b(use|uses|using|utilise|utilisons|utilisent|usamos|utilizamos|utiliza)\s+(des\s+|de\s+|los\s+)?cookies?\b"
    r"|\bcookies?\s+(policy|settings|preferences|consent)\b"
    r"|\b(accept|accepter|aceptar)\s+(all\s+|tous\s+les\s+|todas\s+las\s+)?(the\s+|les\s+|las\s+)?cookies\b",
    re.IGNORECASE,
)
CONSENT = re.compile(r"\b(accept|agree|consent|reject|accepter|refuser|aceptar|rechazar|preferences|préférences|settings)\b",
                     re.IGNORECASE)


# Words a short page must keep beside its wall sentences to be a document: a record page is often a short abstract
# with "log in to download the full text" or a cookie banner beside it, and is still the document.
REST_WORDS = 10
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def _is_wall_sentence(sentence: str) -> bool:
    return bool(NOT_FOUND_TEXT.search(sentence) or LOGIN.search(sentence)
                or COOKIES.search(sentence) or CONSENT.search(sentence))


def wall_reason(title: str, text: str) -> tuple[str, str] | None:
    """(reason, detail) when a short page is a soft 404, a log-in wall or a cookie wall rather than a document.

    A page is judged only when it is short and, once its wall sentences are set aside, fewer than REST_WORDS words
    remain: a refused page is not stored, so an abstract beside a "log in to download" line must not be refused.
    """
    if len(text.split()) > WALL_WORDS:
        return None
    if any(NOT_FOUND_TITLE.fullmatch(part) for part in TITLE_PARTS.split(title)):
        return "soft_404", "the page answers HTTP 200 but says it is not found"
    rest = sum(len(s.split()) for s in SENTENCE_END.split(text) if not _is_wall_sentence(s))
    if rest >= REST_WORDS:
        return None
    if NOT_FOUND_TEXT.search(text[:300]):
        return "soft_404", "the page answers HTTP 200 but says it is not found"
    if LOGIN.search(f"{title}\n{text}"):
        return "login_wall", "the page asks to log in instead of showing the document"
    if COOKIES.search(text) and CONSENT.search(text):
        return "cookie_wall", "the page asks to accept cookies instead of showing the document"
    return None


def extract_html(html: str, url: str, second: bool = True) -> Extracted:
    """Main text and metadata of an HTML page; raises ExtractionError('no_text'). `second=False`: trafilatura alone."""
    text = main_text(html, url, second)
    if len(text.split()) < MIN_WORDS:
        raise ExtractionError("no_text", "no main text found (boilerplate only)")
    meta = trafilatura.extract_metadata(html, default_url=url, extensive=False)
    try:
        tree = lxml.html.fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        tree = None
    title = (meta.title if meta else None) or ""
    published = iso_date(meta.date) if meta else None
    authors = split_authors(meta.author) if meta else []
    if tree is not None:
        if not title:
            title = next(iter(_meta(tree, TITLE_META)), "") or (tree.findtext(".//title") or "").strip()
        if not published:
            times = [t.get("datetime") for t in tree.iter("time") if t.get("datetime")]
            published = next((d for d in map(iso_date, [*_meta(tree, DATE_META), *times]) if d), None)
        if not authors:
            names = _meta(tree, AUTHOR_META)
            authors = names if len(names) > 1 else split_authors(next(iter(names), None))
    title = " ".join(title.split())
    if wall := wall_reason(title, text):
        raise ExtractionError(*wall)
    return Extracted(text=tidy_text(text, title) or text.strip(), title=title, published=published, authors=authors)


def extract_pdf(body: bytes) -> Extracted:
    """Text of a PDF and its info metadata; raises ExtractionError('bad_pdf' or 'no_text')."""
    try:
        reader = PdfReader(io.BytesIO(body), strict=False)
        pages = [(page.extract_text() or "") for page in reader.pages[:MAX_PDF_PAGES]]
        info = reader.metadata
    except FileNotDecryptedError:
        raise ExtractionError("encrypted_pdf", "the PDF needs a password to open (not the empty one)") from None
    except Exception as exc:  # pypdf raises many types on broken files; any of them means a bad PDF
        raise ExtractionError("bad_pdf", f"{type(exc).__name__}: {exc}") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if len(text.split()) < MIN_WORDS:
        raise ExtractionError("no_text", "PDF without extractable text (scanned?)")
    title = author = ""
    published = None
    if info is not None:
        title = str(info.title or "").strip()
        author = str(info.author or "").strip()
        try:
            published = iso_date(info.creation_date)
        except Exception:  # a malformed date in the info dictionary is not worth failing the file for
            published = None
    return Extracted(text=text, title=" ".join(title.split()), published=published, authors=split_authors(author))


# Block elements end a line; everything else flows into the line around it.
BLOCK_TAGS = frozenset(
    "p div li ul ol h1 h2 h3 h4 h5 h6 br tr table blockquote pre section article figure figcaption dd dt dl hr header footer".split()
)
DROP_TAGS = ("script", "style", "noscript", "iframe", "form", "button", "svg", "template", "object", "embed")
# Share buttons and related-post lists that plugins inject into WordPress content.rendered.
DROP_CLASSES = re.compile(r"\b(sharedaddy|jp-relatedposts|addtoany|sd-sharing|wp-block-buttons|screen-reader-text)\b")


def extract_fragment(html: str) -> Extracted:
    """Text of clean body HTML (WordPress content.rendered): every paragraph kept, scripts and share widgets dropped.

    trafilatura is made for whole pages and may drop short bodies; a fragment is already the main text.
    """
    try:
        root = lxml.html.fragment_fromstring(html or "<p></p>", create_parent="div")
    except (lxml.etree.ParserError, ValueError) as exc:
        raise ExtractionError("no_text", f"unparsable content: {exc}") from None
    for el in list(root.iter(*DROP_TAGS)):
        el.drop_tree()
    for el in list(root.iter()):
        if isinstance(el.tag, str) and DROP_CLASSES.search(el.get("class") or ""):
            el.drop_tree()
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag in BLOCK_TAGS:
            el.tail = "\n" + (el.tail or "")
            if el.tag != "br":
                el.text = "\n" + (el.text or "")
    lines = (" ".join(line.split()) for line in root.text_content().splitlines())
    text = "\n".join(line for line in lines if line)
    if len(text.split()) < MIN_WORDS:
        raise ExtractionError("no_text", "empty content")
    return Extracted(text=text)


def html_to_plain(value: str) -> str:
    """Plain text of a short HTML string (a rendered title): tags dropped, entities decoded."""
    if not value or "<" not in value and "&" not in value:
        return " ".join((value or "").split())
    try:
        return " ".join(lxml.html.fragment_fromstring(value, create_parent="span").text_content().split())
    except (lxml.etree.ParserError, ValueError):
        return " ".join(value.split())


def extract_any(body: bytes, fmt: str, encoding: str, content_type: str, url: str) -> tuple[Extracted, bool]:
    """Extract a fetched body by its format ('' sniffs PDF or HTML); returns the result and whether it was a PDF."""
    if fmt == "text":
        text = body.decode("utf-8", errors="replace").strip()
        if len(text.split()) < MIN_WORDS:
            raise ExtractionError("no_text", "text too short")
        return Extracted(text=text), False
    if fmt == "fragment":
        return extract_fragment(body.decode("utf-8", errors="replace")), False
    if body[:5] == b"%PDF-" or ("pdf" in content_type.lower() and body.lstrip()[:1] != b"<"):
        # (A body in markup under a PDF type is a server's HTML page, often an error or log-in page: read as HTML.)
        return extract_pdf(body), True
    if not body.strip():
        raise ExtractionError("no_text", "empty page (HTTP 200 with no content)")
    return extract_html(decode_html(body, encoding), url), False
