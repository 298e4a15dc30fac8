"""sources.yaml: the curator's list of sources, loaded safely and validated field by field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ssehub.errors import ConfigError

KINDS = ("sitemap", "feed", "wordpress", "oai-pmh", "crawl", "import")
ID_RE = re.compile(r"^[a-z0-9_]+$")


class SourceConfig(BaseModel):
    """One entry of sources.yaml (CONTRACT section 3)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str = ""
    kind: Literal["sitemap", "feed", "wordpress", "oai-pmh", "crawl", "import"]
    url: str = ""
    enabled: bool = True
    delay: float | None = Field(None, ge=0, le=600)
    max_documents: int = Field(10000, ge=1)
    languages: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    start_urls: list[str] = Field(default_factory=list)
    follow: list[str] = Field(default_factory=list)
    documents: list[str] = Field(default_factory=list)
    max_depth: int = Field(5, ge=0, le=50)
    set: str | None = None
    metadata_prefix: str = "oai_dc"
    licence: str = ""
    notes: str = ""

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not ID_RE.match(v):
            raise ValueError("must match [a-z0-9_]+ (lower-case letters, digits, underscore)")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v

    @field_validator("start_urls")
    @classmethod
    def _start_urls(cls, v: list[str]) -> list[str]:
        for u in v:
            if not re.match(r"^https?://[^/\s]+", u):
                raise ValueError(f"{u!r} is not an http(s) URL")
        return v

    @field_validator("exclude", "follow", "documents")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regular expression ({exc})") from None
        return v

    def entry_urls(self) -> list[str]:
        """Where a harvest of this source starts."""
        return self.start_urls or ([self.url] if self.url else [])


def _field_errors(source: str, exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(entry)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; CONTRACT section 3 lists the fields)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        out.append(f"source {source}: field {loc}: {msg}")
    return out


def parse_sources(data: Any, origin: str = "sources.yaml") -> tuple[list[SourceConfig], list[str]]:
    """Validate parsed YAML; returns the good sources and one message per problem."""
    if data is None:
        return [], []
    if not isinstance(data, dict) or not isinstance(data.get("sources", []), list):
        return [], [f"{origin}: the top level must be a mapping with a list under `sources:`"]
    good: list[SourceConfig] = []
    problems: list[str] = []
    seen: set[str] = set()
    for i, entry in enumerate(data.get("sources") or [], start=1):
        label = f"#{i}"
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            label = entry["id"]
        if not isinstance(entry, dict):
            problems.append(f"source {label}: each entry must be a mapping of fields, got {type(entry).__name__}")
            continue
        try:
            src = SourceConfig.model_validate(entry)
        except ValidationError as exc:
            problems.extend(_field_errors(label, exc))
            continue
        if src.kind != "import" and not src.entry_urls():
            problems.append(f"source {label}: field url: required for kind {src.kind}")
            continue
        if src.kind == "crawl" and not src.documents:
            problems.append(f"source {label}: field documents: kind crawl needs at least one document URL regex")
            continue
        if src.id in seen:
            problems.append(f"source {label}: field id: duplicate id {src.id!r}")
            continue
        seen.add(src.id)
        good.append(src)
    return good, problems


def load_sources(path: Path, strict: bool = True) -> list[SourceConfig]:
    """Read and validate a sources file; with strict, any problem raises ConfigError naming all of them."""
    if not path.exists():
        raise ConfigError(f"{path}: no such sources file (create it, or pass --sources FILE)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    good, problems = parse_sources(data, str(path))
    if problems and strict:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return good
