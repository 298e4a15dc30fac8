"""A fake WordPress REST API (WPML-style translations) over the JSON files in `_wp/`, for the harvest tests."""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import urlsplit

from ssehub.demo.server import Reply, SiteRequest

MAX_PER_PAGE = 2  # WordPress caps per_page at 100; a small cap here makes three posts span two pages
DEFAULT_LANG = "fr"
TYPES = {
    "post": {"name": "Posts", "slug": "post", "rest_base": "posts", "rest_namespace": "wp/v2"},
    "page": {"name": "Pages", "slug": "page", "rest_base": "pages", "rest_namespace": "wp/v2"},
    "attachment": {"name": "Media", "slug": "attachment", "rest_base": "media", "rest_namespace": "wp/v2"},
    "publication": {"name": "Publications", "slug": "publication", "rest_base": "publications", "rest_namespace": "wp/v2"},
    "wp_block": {"name": "Patterns", "slug": "wp_block", "rest_base": "blocks", "rest_namespace": "wp/v2"},
}
BASES = {"posts": "post", "pages": "page", "publications": "publication"}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(data, ensure_ascii=False), {"Content-Type": "application/json; charset=UTF-8", **(headers or {})})


def _load(request: SiteRequest, name: str) -> list[dict[str, Any]]:
    return json.loads((request.root / "_wp" / f"{name}.json").read_text(encoding="utf-8"))


def _listing(request: SiteRequest, post_type: str) -> Reply:
    users = {u["id"]: u for u in _load(request, "users")}
    posts = [p for p in _load(request, "posts") if p["type"] == post_type]
    posts = [p for p in posts if p.get("lang", DEFAULT_LANG) == (request.arg("lang") or DEFAULT_LANG)]
    if after := request.arg("modified_after"):
        posts = [p for p in posts if p["modified"] > after]
    posts.sort(key=lambda p: p["id"])
    per_page = min(int(request.arg("per_page", "10")), MAX_PER_PAGE)
    page = int(request.arg("page", "1"))
    pages = max(1, math.ceil(len(posts) / per_page))
    if page > pages:
        return _json({"code": "rest_post_invalid_page_number", "message": "The page number requested is larger than the number of pages available."}, 400)
    out = []
    for p in posts[(page - 1) * per_page : page * per_page]:
        item = {
            "id": p["id"], "date": p["date"], "date_gmt": p["date"], "modified": p["modified"], "modified_gmt": p["modified"],
            "slug": p["slug"], "status": "publish", "type": p["type"], "link": request.base_url + p["path"],
            "title": {"rendered": p["title"]}, "content": {"rendered": p["content"], "protected": False},
            "excerpt": {"rendered": ""}, "author": p["author"], "lang": p.get("lang", DEFAULT_LANG),
            "translations": p.get("translations", {}),
        }
        if "_embed" in request.query and users[p["author"]].get("embed", True):
            item["_embedded"] = {"author": [{"id": p["author"], "name": users[p["author"]]["name"]}]}
        if fields := request.arg("_fields"):
            item = {k: v for k, v in item.items() if k in fields.split(",")}
        out.append(item)
    return _json(out, headers={"X-WP-Total": str(len(posts)), "X-WP-TotalPages": str(pages)})


def _user(request: SiteRequest, user_id: str) -> Reply:
    """`/users/{id}`: a public author, or the 401 that sites hiding their users answer."""
    users = {str(u["id"]): u for u in _load(request, "users")}
    user = users.get(user_id)
    if user is None:
        return _json({"code": "rest_user_invalid_id", "message": "Invalid user ID."}, 404)
    if user.get("hidden"):
        return _json({"code": "rest_user_cannot_view", "message": "Sorry, you are not allowed to list users."}, 401)
    return _json({"id": user["id"], "name": user["name"], "slug": user["name"].lower().replace(" ", "-")})


def handle(request: SiteRequest) -> Reply | None:
    """The REST routes, and the public page of every published post (what a deleted post's link no longer answers)."""
    path = request.path
    if path == "/wp-json/wp/v2/types":
        return _json(TYPES)
    if path.startswith("/wp-json/wp/v2/"):
        base = path.removeprefix("/wp-json/wp/v2/").strip("/")
        if base.startswith("users/"):
            return _user(request, base.removeprefix("users/"))
        if base in BASES:
            return _listing(request, BASES[base])
        return _json({"code": "rest_no_route", "message": "No route was found matching the URL and request method."}, 404)
    for p in _load(request, "posts"):
        if urlsplit(request.base_url + p["path"]).path == path:
            page = f"<html><head><title>{p['title']}</title></head><body><nav>Menu</nav><article>{p['content']}</article></body></html>"
            return Reply(200, page, {"Content-Type": "text/html; charset=utf-8"})
    return None
