"""Build the PDF attachments of the bundled demo sites from their plain-text sources.

Every PDF under ``ssehub/demo/sites/`` is generated from a UTF-8 ``.txt`` file stored beside it
(``papers/pdf/wp-3.txt`` -> ``papers/pdf/wp-3.pdf``), so the text can be reviewed and edited like
any other source. The format of a source file::

    Title of the document (first line)
    Author: First Author; Second Author    <- optional header lines, up to the first blank line
    Publisher: Name of the organisation    <- printed under the title, not in the metadata
    Date: 2017-01-30
    Language: en

    # A heading
    A paragraph; a paragraph may span several lines.

    Another paragraph.

Only ``.txt`` files sitting where a site serves PDFs are converted: ``files/`` (observatoire),
``wp-content/uploads/`` (solidarity-news) and ``papers/pdf/`` (research-centre). Nothing links
to the ``.txt`` sources, so the demo harvest never sees them.

The PDF carries the title, author, language and creation date in its document information. Text
is set in DejaVu Sans when the font is installed (any Unicode character), otherwise in the core
Helvetica font, which covers Latin-1 (French and Spanish accents); characters outside Latin-1 are
then replaced by close equivalents. The output depends only on the source, so re-running the
script on unchanged sources rewrites identical files.

Usage: ``python ssehub/demo/make_pdfs.py [SITES_DIR]`` (default: the ``sites`` folder beside this script).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF

SITES_DIR = Path(__file__).resolve().parent / "sites"
# Folders (relative to a site root) where a site serves PDFs; a .txt found there is a PDF source.
PDF_FOLDERS = ("files/", "wp-content/uploads/", "papers/pdf/")
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"), Path("/usr/local/share/fonts"))
CREATOR = "ssehub demo (make_pdfs.py)"
# Replacements for the core-font fallback, which only encodes Latin-1.
LATIN1_FALLBACK = {
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
    "\u2026": "...", "\u2022": "-", "\u20ac": "EUR", "\u0153": "oe", "\u0152": "OE", "\u202f": " ",
}


@dataclass
class Source:
    """A parsed ``.txt`` source: title, header fields and body blocks (``("h" | "p", text)``)."""

    title: str
    author: str = ""
    publisher: str = ""
    date: datetime | None = None
    language: str = ""
    blocks: list[tuple[str, str]] = field(default_factory=list)


def parse_source(text: str) -> Source:
    """Parse the source format described in the module docstring."""
    lines = text.replace("\r\n", "\n").strip().split("\n")
    if not lines[0].strip():
        raise ValueError("empty source: the first line must be the title")
    source = Source(title=lines[0].strip())
    rest = lines[1:]
    while rest and rest[0].strip():
        key, _, value = rest.pop(0).partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "author":
            source.author = value
        elif key == "publisher":
            source.publisher = value
        elif key == "date":
            source.date = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
        elif key == "language":
            source.language = value
        else:
            raise ValueError(f"unknown header line {key!r} (expected Author, Publisher, Date or Language)")
    for chunk in "\n".join(rest).split("\n\n"):
        para = " ".join(chunk.split())
        if not para:
            continue
        if para.startswith("# "):
            source.blocks.append(("h", para[2:]))
        else:
            source.blocks.append(("p", para))
    return source


def find_sources(sites_dir: Path) -> list[Path]:
    """Every ``.txt`` under a site root that sits in one of the PDF folders, sorted."""
    found = []
    for site in sorted(p for p in sites_dir.iterdir() if p.is_dir()):
        for txt in sorted(site.rglob("*.txt")):
            rel = txt.relative_to(site).as_posix()
            if rel.startswith(PDF_FOLDERS):
                found.append(txt)
    return found


def _unicode_font_dir() -> Path | None:
    for folder in FONT_DIRS:
        if (folder / "DejaVuSans.ttf").is_file() and (folder / "DejaVuSans-Bold.ttf").is_file():
            return folder
    return None


class _Document(FPDF):
    """A4 pages numbered in the footer; `text_of` adapts text to the font in use."""

    def __init__(self, family: str, sanitize: bool) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.text_family = family
        self.sanitize = sanitize

    def text_of(self, text: str) -> str:
        if not self.sanitize:
            return text
        for char, repl in LATIN1_FALLBACK.items():
            text = text.replace(char, repl)
        return text.encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font(self.text_family, size=8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, str(self.page_no()), align="C")
        self.set_text_color(0, 0, 0)


def render(source: Source) -> bytes:
    """The PDF bytes of a parsed source."""
    font_dir = _unicode_font_dir()
    family = "DejaVu" if font_dir else "Helvetica"
    pdf = _Document(family, sanitize=font_dir is None)
    if font_dir:
        pdf.add_font("DejaVu", "", str(font_dir / "DejaVuSans.ttf"))
        pdf.add_font("DejaVu", "B", str(font_dir / "DejaVuSans-Bold.ttf"))
    pdf.set_title(source.title)
    if source.author:
        pdf.set_author(source.author)
    if source.language:
        pdf.set_lang(source.language)
    pdf.set_creator(CREATOR)
    pdf.set_producer(CREATOR)
    # A fixed date keeps the output reproducible; the source's date is the document's.
    pdf.set_creation_date(source.date or datetime(2000, 1, 1, tzinfo=UTC))
    pdf.set_margins(left=22, top=22, right=22)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()

    pdf.set_font(family, "B", 16)
    pdf.multi_cell(0, 8, pdf.text_of(source.title), align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    when = source.date.strftime("%Y-%m-%d") if source.date else ""
    byline = " - ".join(part for part in (source.author, source.publisher, when) if part)
    if byline:
        pdf.set_font(family, "", 10)
        pdf.set_text_color(80, 80, 80)
        pdf.multi_cell(0, 5, pdf.text_of(byline), align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
    pdf.ln(4)
    for kind, text in source.blocks:
        if kind == "h":
            pdf.ln(2)
            pdf.set_font(family, "B", 12)
            pdf.multi_cell(0, 6, pdf.text_of(text), align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
        else:
            pdf.set_font(family, "", 10.5)
            pdf.multi_cell(0, 5.4, pdf.text_of(text), align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2.5)
    return bytes(pdf.output())


def build(txt: Path) -> Path:
    """Write the PDF beside ``txt``; returns its path."""
    target = txt.with_suffix(".pdf")
    target.write_bytes(render(parse_source(txt.read_text(encoding="utf-8"))))
    return target


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    sites_dir = Path(args[0]) if args else SITES_DIR
    sources = find_sources(sites_dir)
    if not sources:
        print(f"no PDF sources under {sites_dir}", file=sys.stderr)
        return 1
    for txt in sources:
        pdf = build(txt)
        print(f"{pdf.relative_to(sites_dir)}  {pdf.stat().st_size / 1024:.1f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
