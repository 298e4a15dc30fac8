"""WordPress spider: the REST API (`/wp-json/wp/v2/<type>`), paged by X-WP-TotalPages, `modified_after` on re-harvests."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urljoin

import lxml.html
from scrapy import Request
from scrapy.http import Response
from twisted.python.failure import Failure

from harvester.extract import html_to_plain, iso_date
from harvester.items import PageItem
from harvester.spiders.base import BaseSpider
from harvester.spiders.sitemap import parse_time
from harvester.urls import page_document_id
from ssehub.models import normalize_url

logger = logging.getLogger(__name__)

PER_PAGE = 100
# Post types that are not documents (media, menus, blocks, templates, styles, fonts).
SKIP_TYPES = {"attachment", "nav_menu_item", "wp_block", "wp_template", "wp_template_part", "wp_navigation",
              "wp_global_styles", "wp_font_family", "wp_font_face"}
DEFAULT_BASES = ("posts", "pages")
ID_FIELDS = "id,link,lang,translations,modified_gmt"
OVERLAP = timedelta(days=1)  # modified_after is compared with the site's local time: ask for a day more


def api_root(url: str) -> str:
    """The `/wp-json/` root of a site URL (which may already point into the API)."""
    if "/wp-json/" in url:
        return url[: url.index("/wp-json/") + len("/wp-json/")]
    return urljoin(url if url.endswith("/") else url + "/", "wp-json/")


class WordPressSpider(BaseSpider):
    """Posts, pages and custom post types from the REST API; `content.rendered` is the text, no page is fetched.

    Translations (WPML/Polylang `lang` and `translations` fields) are listed per language and stored as separate
    documents. A re-harvest asks only for what changed (`modified_after`), plus a light id listing that tells which
    posts are gone; those are confirmed at their own URL (404/410) before they are withdrawn.
    """

    kind = "wordpress"
    revisit_unlisted = False  # replaced by the id listing: see _on_idle

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api = api_root(self.source.url)
        since = parse_time(self.store.harvest_state(self.source.id, "since"))
        self.modified_after = (since - OVERLAP).strftime("%Y-%m-%dT%H:%M:%S") if since else None
        self.bases: list[str] = []
        self.languages: set[str] = set()  # languages listed (or seen in the unfiltered listings)
        self.listed: set[str] = set()  # normalised links of every post the listings named
        self.emitted: set[str] = set()
        self.complete = True  # every listing page answered: deletions can be told, the watermark may move
        # Authors the listing did not embed, looked up once each at /users/{id}: id -> name ('' = not public).
        self.author_names: dict[int, str] = {}
        self.waiting: dict[int, list[tuple[dict[str, Any], str]]] = {}  # author id -> posts parked until the answer

    async def start(self) -> AsyncIterator[Request]:
        request = self.follow(self.api + "wp/v2/types", self.parse_types)
        if request:
            yield request.replace(meta={"handle_httpstatus_all": True}, errback=self.on_types_error)

    # -- listings -----------------------------------------------------------------------------

    def parse_types(self, response: Response) -> Iterator[Any]:
        try:
            types = json.loads(response.body) if response.status == 200 else {}
        except ValueError:
            types = {}
        if isinstance(types, dict):
            for slug, info in types.items():
                if isinstance(info, dict) and slug not in SKIP_TYPES and info.get("rest_base"):
                    if info.get("rest_namespace", "wp/v2") == "wp/v2":
                        self.bases.append(info["rest_base"])
        if response.status == 200:
            yield self.navigation_item(response)
        self.bases = self.bases or list(DEFAULT_BASES)  # sites that hide /types still serve posts and pages
        logger.debug("%s: post types %s", self.source.id, self.bases)
        for base in self.bases:
            yield from self.listings(base, None)

    def on_types_error(self, failure: Failure) -> Iterator[Any]:
        self.bases = list(DEFAULT_BASES)
        for base in self.bases:
            yield from self.listings(base, None)

    def listings(self, base: str, lang: str | None) -> Iterator[Request]:
        """First pages of a post type's listings: content (changed posts) and, on a re-harvest, ids (all posts)."""
        yield from self.listing(base, "content", lang, 1)
        if self.modified_after:
            yield from self.listing(base, "ids", lang, 1)

    def listing(self, base: str, mode: str, lang: str | None, page: int) -> Iterator[Request]:
        params: dict[str, Any] = {"per_page": PER_PAGE, "page": page, "orderby": "id", "order": "asc"}
        if mode == "content":
            params["_embed"] = "author"
            if self.modified_after:
                params["modified_after"] = self.modified_after
        else:
            params["_fields"] = ID_FIELDS
        if lang:
            params["lang"] = lang
        url = f"{self.api}wp/v2/{base}?{urlencode(params)}"
        if request := self.follow(url, self.parse_listing, base=base, mode=mode, lang=lang, page=page):
            yield request.replace(meta={**request.meta, "listing": True})

    def parse_listing(self, response: Response, base: str, mode: str, lang: str | None, page: int) -> Iterator[Any]:
        try:
            posts = json.loads(response.body)
        except ValueError:
            posts = None
        if not isinstance(posts, list):
            self.complete = False
            yield self.item(response, "failed", reason="bad_json", detail="a REST listing that is not a JSON list")
            return
        yield self.navigation_item(response)
        if page == 1:
            try:
                pages = int(response.headers.get("X-WP-TotalPages", b"1"))
            except ValueError:
                pages = 1
            for n in range(2, pages + 1):
                yield from self.listing(base, mode, lang, n)
        for post in posts:
            if not isinstance(post, dict) or not post.get("link"):
                continue
            yield from self.discover_languages(post, lang)
            self.listed.add(normalize_url(post["link"]))
            self.mark_listed(post["link"])
            if mode == "content":
                yield from self.post_items(post, base)

    def discover_languages(self, post: dict[str, Any], listing_lang: str | None) -> Iterator[Request]:
        """Translation plugins may list one language at a time: a translation's language gets its own listings."""
        if listing_lang is None and isinstance(post.get("lang"), str) and post["lang"]:
            self.languages.add(post["lang"])  # the unfiltered listing already shows this language
        codes = set(post["translations"]) if isinstance(post.get("translations"), dict) else set()
        for code in sorted(codes - self.languages):
            self.languages.add(code)
            for base in self.bases:
                yield from self.listings(base, code)

    # -- posts --------------------------------------------------------------------------------

    def post_items(self, post: dict[str, Any], base: str) -> Iterator[Any]:
        """One document per post (unless unchanged since the last harvest), and requests for its attached PDFs."""
        link = post["link"]
        key = normalize_url(link)
        if key in self.emitted:
            return
        self.emitted.add(key)
        stamp = post.get("modified_gmt") or post.get("modified") or ""
        known = self.known.get(link) or self.known.get(key)
        if known and known.get("document_id") and known.get("status") == 200 and stamp and known.get("last_modified") == stamp:
            yield PageItem(source_id=self.source.id, url=link, event="not_modified", status=200, derived=True)
            yield from self._recheck_attachments(link)
            return
        hints = self.post_hints(post, base)
        author = post.get("author")
        if not hints["authors"] and isinstance(author, int) and author > 0:
            if author not in self.author_names:
                # No embedded author (an old WordPress, a plugin): ask /users/{id}, once per author, then emit.
                first = author not in self.waiting
                self.waiting.setdefault(author, []).append((post, base))
                if not first:
                    return
                request = self.follow(f"{self.api}wp/v2/users/{author}", self.parse_user, author=author)
                if request is None:  # excluded by the source's patterns: the posts go without an author
                    yield from self.release_author(author, "")
                    return
                yield request.replace(meta={**request.meta, "handle_httpstatus_all": True}, errback=self.on_user_error)
                return
            hints["authors"] = [self.author_names[author]] if self.author_names[author] else []
        yield from self.post_document(post, base, hints)

    def post_document(self, post: dict[str, Any], base: str, hints: dict[str, Any]) -> Iterator[Any]:
        link = post["link"]
        stamp = post.get("modified_gmt") or post.get("modified") or ""
        content = ((post.get("content") or {}).get("rendered") or "") if isinstance(post.get("content"), dict) else ""
        yield PageItem(
            source_id=self.source.id,
            url=link,
            event="document",
            status=200,
            derived=True,
            body=content.encode("utf-8"),
            format="fragment",
            last_modified=stamp or None,
            hints=hints,
            extra={"wp_id": post.get("id"), "wp_type": base, "modified": post.get("modified_gmt") or post.get("modified")},
        )
        yield from self.attachment_requests(content_links(content, link), page_document_id(self.source.id, link))

    def parse_user(self, response: Response, author: int) -> Iterator[Any]:
        """An author's public name; sites that hide their users (401/403/404) leave the posts without one, no failure."""
        name = ""
        if response.status == 200:
            yield self.navigation_item(response)
            try:
                user = json.loads(response.body)
            except ValueError:
                user = None
            if isinstance(user, dict) and isinstance(user.get("name"), str):
                name = " ".join(user["name"].split())
        yield from self.release_author(author, name)

    def on_user_error(self, failure: Failure) -> Iterator[Any]:
        yield from super().on_error(failure)  # a failed fetch is counted; the posts still go on, without an author
        yield from self.release_author(failure.request.cb_kwargs["author"], "")  # type: ignore[attr-defined]

    def release_author(self, author: int, name: str) -> Iterator[Any]:
        self.author_names[author] = name
        for post, base in self.waiting.pop(author, []):
            hints = self.post_hints(post, base)
            hints["authors"] = [name] if name else []
            yield from self.post_document(post, base, hints)

    def post_hints(self, post: dict[str, Any], base: str) -> dict[str, Any]:
        title = post.get("title")
        authors = [
            a.get("name", "").strip()
            for a in ((post.get("_embedded") or {}).get("author") or [])
            if isinstance(a, dict) and a.get("name")
        ]
        return {
            "title": html_to_plain(title.get("rendered", "") if isinstance(title, dict) else str(title or "")),
            "published": iso_date(post.get("date_gmt") or post.get("date")),
            "authors": authors,
            "type": "page" if base == "pages" else "",
            "lang": post.get("lang") if isinstance(post.get("lang"), str) else "",
            "prefer_hints": True,
        }

    # -- the end: deletions and the watermark -------------------------------------------------

    def on_error(self, failure: Failure) -> Iterator[PageItem]:
        if failure.request.meta.get("listing"):  # type: ignore[attr-defined]
            self.complete = False
        yield from super().on_error(failure)

    def _on_idle(self) -> None:
        if self._revisited or not self.complete or self.truncated:
            return
        self._revisited = True
        candidates = {
            url: page["document_id"]
            for url, page in self.known.items()
            if page.get("document_id") and page.get("status") == 200 and normalize_url(url) not in self.listed
        }
        briefs = self.store.documents_brief(list(set(candidates.values())))
        # Attachments are not posts; a post no listing named is checked at its own URL.
        requests = [
            Request(url, callback=self.check_gone, errback=self.on_error, meta={"handle_httpstatus_list": [404, 410]}, dont_filter=True)
            for url, doc_id in candidates.items()
            if doc_id in briefs and not briefs[doc_id]["parent_id"] and normalize_url(briefs[doc_id]["url"]) == normalize_url(url)
        ]
        if not requests:
            return
        for request in requests:
            self.crawler.engine.crawl(request)
        from scrapy.exceptions import DontCloseSpider

        raise DontCloseSpider

    def check_gone(self, response: Response) -> Iterator[PageItem]:
        """A post the API no longer lists: withdrawn when its URL says it is gone (unpublished posts answer 404)."""
        if response.status in (404, 410):
            yield self.item(response, "gone")

    def closed(self, reason: str) -> None:
        if reason == "finished" and self.complete:
            self.tracker.watermark = self.started


def content_links(content: str, base_url: str) -> list[tuple[str, str]]:
    """(absolute URL, type attribute) of the links in a post's HTML."""
    if "<a" not in content:
        return []
    try:
        root = lxml.html.fragment_fromstring(content, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return []
    return [(urljoin(base_url, a.get("href", "").strip()), a.get("type") or "") for a in root.iter("a") if a.get("href")]
