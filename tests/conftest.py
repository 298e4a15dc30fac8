"""Shared pytest fixtures."""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------
# Fixture sites (harvester): static sites under tests/sites/ served on 127.0.0.1, port 0.
# ---------------------------------------------------------------------------------------------

import datetime as _dt
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SITES_DIR = Path(__file__).parent / "sites"

# PDFs of the fixture sites, written by `write_fixture_pdfs` (path -> (title, author, date, text)).
FIXTURE_PDFS: dict[str, tuple[str, str, _dt.date, str]] = {
    "sitemap/files/report-101.pdf": (
        "Worker buyouts: full report", "Maria Lopes", _dt.date(2019, 11, 21),
        "Report. Worker buyouts of small firms facing closure. Twelve converted firms were followed for five years. "
        "Most kept their staff and reinvested their surplus, while bank credit remained the main obstacle.",
    ),
    "feed/files/food-aid-brief.pdf": (
        "", "", _dt.date(2024, 2, 10),
        "Policy brief. From food parcels to solidarity groceries. Letting households choose their own food at a "
        "reduced price respects their dignity and supports local organic farms.",
    ),
    "crawl/files/wp-1.pdf": (
        "Governance in multi-stakeholder cooperatives", "Ingrid Solberg", _dt.date(2022, 4, 12),
        "Working paper series, number 1. Multi-stakeholder cooperatives give workers, users and local supporters "
        "a seat on the same board. Weighted colleges prevent any single group from dominating decisions.",
    ),
    "crawl/papers/policy-brief-5.pdf": (
        "Policy brief 5: Cooperatives and the green transition", "Centre for Cooperative Research", _dt.date(2023, 9, 1),
        "Policy brief. Cooperatives and the green transition. Energy, housing and food cooperatives let citizens "
        "invest together in low-carbon projects and share the benefits locally.",
    ),
}
# A PDF that no parser can read (truncated after the header).
BROKEN_PDFS = ("crawl/files/wp-3-appendix.pdf",)


def write_fixture_pdfs(root: Path) -> None:
    """Write the fixture sites' PDFs (generated with fpdf2, so no binary is committed) under a copy of tests/sites."""
    from fpdf import FPDF

    for rel, (title, author, date, text) in FIXTURE_PDFS.items():
        pdf = FPDF()
        if title:
            pdf.set_title(title)
        if author:
            pdf.set_author(author)
        pdf.set_creation_date(_dt.datetime(date.year, date.month, date.day, tzinfo=_dt.UTC))
        pdf.add_page()
        pdf.set_font("helvetica", size=11)
        pdf.multi_cell(0, 6, text)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(pdf.output()))
    for rel in BROKEN_PDFS:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Kids [")


def copy_fixture_sites(dest: Path) -> Path:
    """Copy tests/sites to `dest` (editable) and write its PDFs; returns `dest`."""
    shutil.copytree(SITES_DIR, dest)
    write_fixture_pdfs(dest)
    return dest


@pytest.fixture(scope="session")
def fixture_sites_copier() -> Callable[[Path], Path]:
    """copy(dest) -> dest: a fresh, editable copy of tests/sites with its PDFs (for module-scoped fixtures)."""
    return copy_fixture_sites


@pytest.fixture
def fixture_sites(tmp_path: Path) -> Path:
    """A fresh, editable copy of tests/sites with its PDFs written."""
    return copy_fixture_sites(tmp_path / "sites")


@pytest.fixture
def serve_folders() -> Iterator[Callable[..., object]]:
    """Factory: serve_folders({name: folder}) -> SiteGroup (started; `.urls`, `.servers[name].hits`); all closed after."""
    from ssehub.demo.server import SiteGroup

    groups: list[SiteGroup] = []

    def serve(sites: dict[str, Path]) -> SiteGroup:
        group = SiteGroup(sites)
        groups.append(group)
        group.start()
        return group

    yield serve
    for group in groups:
        group.close()


# --- end of fixture sites section ------------------------------------------------------------


# ==== search and API fixtures (searchapi work; only add below this section, do not edit it) ====

from dataclasses import dataclass as _dataclass, field as _field  # noqa: E402

import numpy as _np  # noqa: E402

from ssehub.ann import new_index as _new_index, save_index as _save_index  # noqa: E402
from ssehub.embed import HashingEmbedder as _HashingEmbedder  # noqa: E402
from ssehub.models import Chunk as _Chunk, Document as _Document  # noqa: E402
from ssehub.settings import Settings as _Settings  # noqa: E402
from ssehub.store import Store as _Store  # noqa: E402

# (id, source, lang, type, published, sdgs, title, paragraphs): paragraphs become chunks.
SEARCH_DOCS: list[tuple[str, str, str, str, str | None, list[int], str, list[str]]] = [
    ("coop-1", "unsse", "en", "report", "2021-03-01", [8], "Worker cooperatives and decent work",
     ["Worker cooperatives create decent work and stable jobs in local economies.",
      "Members of a cooperative share ownership and decide democratically."]),
    ("coop-2", "unsse", "fr", "report", "2019-06-15", [8, 5], "Les coopératives de femmes",
     ["Les coopératives de femmes au Sénégal renforcent l'autonomie économique.",
      "Women cooperatives improve gender equality and income."]),
    ("housing-1", "ripess", "en", "case-study", "2020-01-10", [11], "Community land trusts for housing",
     ["Community land trusts keep housing affordable for residents.",
      "Cooperative housing gives tenants control over rents."]),
    ("finance-1", "ripess", "es", "article", "2018-09-09", [1, 10], "Finanzas solidarias y microcrédito",
     ["Las finanzas solidarias y el microcrédito reducen la pobreza.",
      "Solidarity finance reaches people excluded from banks."]),
    ("energy-1", "unsse", "en", "policy-brief", "2022-11-30", [7, 13], "Energy communities and the climate",
     ["Renewable energy cooperatives let citizens own wind and solar power.",
      "Energy communities cut emissions and energy poverty."]),
    ("script-1", "unsse", "en", "article", "2017-05-05", [16], "Escaping <b>markup</b>",
     ["Governance of <script>alert(1)</script> social enterprises & cooperatives needs transparency."]),
    ("hidden-1", "unsse", "en", "report", "2023-01-01", [8], "Hidden cooperative report",
     ["This cooperative report is hidden by a curator and must never appear."]),
    ("gone-1", "ripess", "en", "report", "2023-02-02", [8], "Withdrawn cooperative report",
     ["This cooperative report was withdrawn upstream and must never appear."]),
    ("nodate-1", "ripess", "en", "other", None, [], "Undated note on social enterprises",
     ["Social enterprises reinvest profits in their social mission."]),
]
# Filler documents, so that paging and facets run over several pages.
SEARCH_DOCS += [
    (f"filler-{i:02d}", "unsse" if i % 2 else "ripess", "en" if i % 3 else "fr", "article",
     f"{2010 + i % 12}-0{1 + i % 9}-1{i % 10}", [1 + i % 17], f"Solidarity economy note {i}",
     [f"The social and solidarity economy in region {i} supports cooperatives and mutual aid.",
      f"Local networks number {i} organise markets and training."])
    for i in range(24)
]


@_dataclass
class SearchCorpus:
    """A small indexed corpus in tmp_path: settings pointing at it, its store and embedder."""

    settings: _Settings
    store: _Store
    embedder: _HashingEmbedder
    ids: list[str] = _field(default_factory=list)

    def rebuild_index(self) -> None:
        """Write a fresh index from the embeddings in the store, as `ssehub index` does."""
        index = _new_index(self.embedder.dim)
        for ids, blobs in self.store.iter_embeddings():
            index.add(_np.asarray(ids), _np.vstack([_np.frombuffer(b, dtype=_np.float32) for b in blobs]))
        _save_index(index, self.settings.index_dir, self.embedder.name)

    def add(self, doc_id: str, source: str, lang: str, kind: str, published: str | None, sdgs: list[int], title: str,
            paragraphs: list[str]) -> None:
        """Store a document with its chunks, embeddings and SDG tags."""
        self.store.upsert_document(_Document(id=doc_id, source_id=source, text="\n\n".join(paragraphs), title=title,
                                             url=f"https://example.org/{doc_id}", lang=lang, published=published,
                                             authors=["A. Author"], type=kind))
        chunks = [_Chunk(doc_id, seq, text) for seq, text in enumerate(paragraphs)]
        vectors = self.embedder.encode([f"{title}\n{p}" for p in paragraphs])
        self.store.replace_chunks(doc_id, title, chunks, [v.tobytes() for v in vectors], self.embedder.name)
        tags = [{"sdg": s, "score": 0.9 - 0.1 * n, "evidence": paragraphs[0], "targets": [f"{s}.1"]} for n, s in enumerate(sdgs)]
        self.store.set_auto_tags(doc_id, tags)
        self.ids.append(doc_id)


def make_search_corpus(data_dir: Path, index: bool = True) -> SearchCorpus:
    """SEARCH_DOCS in a store under data_dir (hidden-1 hidden, gone-1 withdrawn) and, if asked, their index."""
    settings = _Settings(data_dir=data_dir, model_path="hashing")
    corpus = SearchCorpus(settings, _Store(settings.store_path), _HashingEmbedder())
    for doc in SEARCH_DOCS:
        corpus.add(*doc)
    corpus.store.set_hidden("hidden-1", True)
    corpus.store.withdraw_document("gone-1")
    if index:
        corpus.rebuild_index()
    return corpus


@pytest.fixture
def search_corpus(tmp_path: Path) -> Iterator[SearchCorpus]:
    """An indexed corpus of SEARCH_DOCS under tmp_path/data."""
    corpus = make_search_corpus(tmp_path / "data")
    yield corpus
    corpus.store.close()


# ==== end of search and API fixtures ====


# --- indexer and SDG tagger fixtures (owner: indexer) -------------------------------------------------------


@pytest.fixture(scope="session")
def minilm_embedder():
    """The packaged all-MiniLM-L6-v2 model, loaded once for the whole session (about 10 s)."""
    from ssehub.embed import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def minilm_tagger(minilm_embedder):
    """The SDG tagger over the real model, with its shipped prototype vectors and weights."""
    from ssehub.tagger import Tagger

    return Tagger(minilm_embedder)


# --- end of indexer and SDG tagger fixtures ------------------------------------------------------------------


# --- harvester: WordPress and OAI-PMH fixture sites, near-duplicates (owner: harvester) ---------------------

# The same report text is posted on the WordPress site (post 15) and in the OAI repository (record 3's PDF).
CLT_TEXT = (
    "Community land trusts separate the ownership of land from the ownership of the homes built on it. The trust, a non-profit controlled by residents, neighbours and public representatives, holds the land for ever and leases it to households at a low ground rent. Resale prices are capped by a formula written into the lease, so each home stays affordable for the next family instead of following the market. Studies of more than two hundred trusts in the United States, England and Belgium find very few foreclosures, stable neighbourhoods and strong participation of residents in the governance of the trust. The report recommends that cities transfer public land to trusts, that banks recognise the lease as collateral, and that national housing programmes fund the first purchase of land so that trusts can grow beyond a few pilot projects."
)
FIXTURE_PDFS.update({
    "wordpress/wp-content/uploads/2022/05/digest-mai-2022.pdf": (
        "Digest ESS mai 2022", "RIPESS", _dt.date(2022, 6, 1),
        "Digest des ressources. Coopératives de plateforme, circuits courts alimentaires et finance solidaire : "
        "quarante nouvelles références repérées dans les bases de données partenaires au mois de mai.",
    ),
    "oai/files/oai-1-annex.pdf": (
        "Statistical annex", "Trebor Scholz", _dt.date(2022, 11, 3),
        "Statistical annex. Membership, revenue and surplus of the eleven platform cooperatives studied, "
        "with the share of revenue paid to workers in each year from 2018 to 2021.",
    ),
    "oai/files/oai-2.pdf": (
        "scan_0042", "", _dt.date(2021, 5, 1),
        "Les coopératives d'activité et d'emploi accueillent des porteurs de projet qui testent leur activité "
        "en devenant salariés de la coopérative, puis associés. Le rapport suit deux cents entrepreneurs salariés.",
    ),
    "oai/files/clt-report.pdf": ("", "", _dt.date(2023, 4, 20), CLT_TEXT),
})
BROKEN_PDFS = BROKEN_PDFS + ("oai/files/broken-7.pdf",)

# --- end of harvester WordPress and OAI-PMH section ------------------------------------------------------------


# The three demo-like fixture sites as sources (sitemap, feed, crawl), delay 0: format with each site's base URL.
THREE_SITES_SOURCES = """\
sources:
  - id: obs
    kind: sitemap
    url: {sitemap}/
    delay: 0
  - id: news
    kind: feed
    url: {feed}/rss.xml
    start_urls: ['{feed}/rss.xml', '{feed}/atom.xml']
    delay: 0
  - id: centre
    kind: crawl
    url: {crawl}/
    start_urls: ['{crawl}/publications/']
    follow: ['/publications/page/\\d+\\.html$']
    documents: ['/papers/[^/]+\\.(html|pdf)$']
    max_depth: 2
    delay: 0
"""
