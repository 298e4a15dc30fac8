"""sources.yaml: the curator's list of sources, loaded safely and validated field by field."""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ssehub.errors import ConfigError, NotFound

KINDS = ("sitemap", "feed", "wordpress", "oai-pmh", "crawl", "import")
ID_RE = re.compile(r"^[a-z0-9_]+$")


def _check_url(url: str) -> None:
    """ValueError unless `url` is an http(s) URL with a host, a valid port and no spaces or control characters (such a
    URL passed the old prefix check and failed only at harvest time)."""
    if not re.match(r"^https?://[^/\s]+", url, re.IGNORECASE):
        raise ValueError(f"{url!r} is not an http(s) URL")
    if re.search(r"[\s\x00-\x1f\x7f]", url):
        raise ValueError(f"{url!r} holds a space or control character: encode it (%20) or remove it")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise ValueError(f"{url!r} is not a valid URL ({exc})") from None
    if not parts.hostname:
        raise ValueError(f"{url!r} has no host name")


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
        if v:
            _check_url(v)
        return v

    @field_validator("start_urls")
    @classmethod
    def _start_urls(cls, v: list[str]) -> list[str]:
        for u in v:
            _check_url(u)
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


class Located(dict):
    """A YAML mapping that knows where it was written: its first line and each key's line (1-based), so a problem
    with a field names the line to fix (a file of many sources has many `delay:` lines)."""

    line: int | None = None
    key_lines: dict[str, int]

    def line_of(self, key: object = None) -> str:
        """` (line N)` of the key (of the entry when the key is not written), or nothing when unknown."""
        line = getattr(self, "key_lines", {}).get(key, self.line) if isinstance(key, str) else self.line
        return f" (line {line})" if line else ""


def _line_of(entry: Any, key: object = None) -> str:
    return entry.line_of(key) if isinstance(entry, Located) else ""


def _field_errors(source: str, exc: ValidationError, entry: Any = None) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(entry)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; CONTRACT section 3 lists the fields)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        out.append(f"source {source}: field {loc}: {msg}{_line_of(entry, err['loc'][0] if err['loc'] else None)}")
    return out


def parse_sources(data: Any, origin: str = "sources.yaml") -> tuple[list[SourceConfig], list[str]]:
    """Validate parsed YAML; returns the good sources and one message per problem."""
    if data is None:
        return [], []
    if not isinstance(data, dict) or not isinstance(data.get("sources", []), list):
        return [], [f"{origin}: the top level must be a mapping with a list under `sources:`"]
    good: list[SourceConfig] = []
    problems: list[str] = []
    seen: dict[str, str] = {}  # id -> where it was first written
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
            problems.extend(_field_errors(label, exc, entry))
            continue
        if src.kind != "import" and not src.entry_urls():
            problems.append(f"source {label}: field url: required for kind {src.kind}{_line_of(entry)}")
            continue
        if src.kind == "crawl" and not src.documents:
            problems.append(f"source {label}: field documents: kind crawl needs at least one document URL regex{_line_of(entry)}")
            continue
        if src.id in seen:
            here, first = _line_of(entry, "id"), seen[src.id]
            where = f"{here[:-1]}; first at {first[2:]}" if here and first else here
            problems.append(f"source {label}: field id: duplicate id {src.id!r}{where}: rename one")
            continue
        seen[src.id] = _line_of(entry, "id")
        good.append(src)
    return good, problems


# The shipped file is 5 kB; 2 MB holds some 20,000 sources. A bigger file is a mistake (or hostile): 10 MB took a minute
# and 900 MB to read.
MAX_SOURCES_BYTES = 2_000_000


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """yaml's safe loader (libyaml's parser where installed), refusing a key given twice in one mapping: PyYAML keeps
    the last silently, so `enabled: false` above a forgotten `enabled: true` would harvest a source the curator turned
    off (and the API's round-trip writer refuses such a file anyway)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        """The mapping, or ConstructorError naming the repeated key and its line."""
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping (line {key_node.start_mark.line + 1}): keep one")
            seen.add(key if isinstance(key, str | int | float | bool) else id(key_node))
        return super().construct_mapping(node, deep=deep)

    def construct_located_map(self, node: yaml.MappingNode) -> Iterator[Located]:
        """SafeConstructor's mapping, as a Located dict (its lines and its keys' lines)."""
        data = Located()
        data.line = node.start_mark.line + 1
        data.key_lines = {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
        yield data
        data.update(self.construct_mapping(node))


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:map", _UniqueKeyLoader.construct_located_map)


def read_sources_yaml(path: Path) -> Any:
    """The parsed YAML of a sources file, or ConfigError saying what to fix (missing, too big, not UTF-8, not YAML,
    a key given twice)."""
    if not path.exists():
        raise ConfigError(f"{path}: no such sources file (create it, or pass --sources FILE)")
    if not path.is_file():
        raise ConfigError(f"{path}: not a file (pass the sources file with --sources FILE)")
    size = path.stat().st_size
    if size > MAX_SOURCES_BYTES:
        raise ConfigError(f"{path}: {size:,} bytes, more than a sources file can be ({MAX_SOURCES_BYTES:,}): "
                          "is it the right file?")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} is {exc.object[exc.start:exc.start + 1]!r}): "
                          "save the file as UTF-8") from None
    try:
        loader = _UniqueKeyLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except (yaml.YAMLError, RecursionError) as exc:
        message = " ".join(str(exc).replace(' in "<unicode string>",', " at").split())
        if "found a tab character" in message or "found character '\\t'" in message:
            message += ": indent with spaces, not tabs"
        raise ConfigError(f"{path}: not valid YAML: {message}") from None


def load_sources(path: Path, strict: bool = True) -> list[SourceConfig]:
    """Read and validate a sources file; with strict, any problem raises ConfigError naming all of them."""
    data = read_sources_yaml(path)
    good, problems = parse_sources(data, str(path))
    if problems and strict:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return good


# -- writing sources.yaml back (curators' edits through the API) ----------------------------------------------


def _round_trip_yaml() -> Any:
    """ruamel.yaml in round-trip mode, indented like the shipped sources.yaml; it keeps comments, order and quoting."""
    from ruamel.yaml import YAML

    rt = YAML()
    rt.preserve_quotes = True
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.width = 4096  # never fold a long regex or URL onto two lines
    return rt


def _yaml_value(value: Any) -> Any:
    """Lists of scalars are written in flow style (`[en, fr]`), as curators write them by hand."""
    from ruamel.yaml.comments import CommentedSeq

    if isinstance(value, list):
        seq = CommentedSeq(value)
        seq.fa.set_flow_style()
        return seq
    return value


def _entry_fields(src: SourceConfig, existing: dict[str, Any]) -> dict[str, Any]:
    """What to write for a source: every non-default field, plus the fields the file already spelled out."""
    full = src.model_dump()
    wanted = set(src.model_dump(exclude_defaults=True)) | {k for k in existing if k in full} | {"id", "kind"}
    return {k: full[k] for k in full if k in wanted and not (full[k] is None and k not in existing)}


@contextmanager
def edit_lock(path: Path) -> Iterator[None]:
    """Hold the sources file for one read-modify-write, across processes.

    `ssehub serve --workers 2` answers curators from two processes: without this, two edits at once each read the
    file, add their entry and rename, and one entry is lost (40 POSTs at once kept 27). The file itself is replaced
    by rename, so the lock is on its folder (flock on the folder's descriptor: no lock file is left beside the
    curator's file). Not re-entrant: take it once, around the check and write_source together.
    """
    import fcntl

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be written ({exc}): check that its folder exists and is writable") from None
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)  # closing the last descriptor releases the lock


def write_source(path: Path, source_id: str, src: SourceConfig | None) -> None:
    """Add, replace (same id) or, with `src=None`, remove one entry of a sources file, keeping its comments.

    The new file is validated as a whole (ConfigError naming the field otherwise) and renamed into place, so a
    reader never sees half a file. NotFound when replacing or removing an id the file does not have.
    """
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.error import YAMLError

    rt = _round_trip_yaml()
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc}): check SSEHUB_SOURCES (--sources) names a UTF-8 file") from None
    try:
        data = rt.load(text) if text.strip() else None
    except YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML, fix it by hand first: {' '.join(str(exc).split())}") from None
    if data is None:
        data = CommentedMap()
    if not isinstance(data, dict) or not isinstance(data.get("sources", []), list):
        raise ConfigError(f"{path}: the top level must be a mapping with a list under `sources:`")
    if data.get("sources") is None:
        data["sources"] = CommentedSeq()
    seq = data["sources"]
    index = next((i for i, e in enumerate(seq) if isinstance(e, dict) and e.get("id") == source_id), None)
    if src is None:
        if index is None:
            raise NotFound(f"no source {source_id!r} in {path}")
        _remove_entry(seq, index)
    else:
        existing = seq[index] if index is not None else CommentedMap()
        fields = _entry_fields(src, existing)
        for key in [k for k in existing if k not in fields]:
            del existing[key]
        order = list(SourceConfig.model_fields)
        for key, value in fields.items():
            if key in existing:
                if existing[key] != value:
                    existing[key] = _yaml_value(value)
                continue
            before = [i for i, k in enumerate(existing) if k in order and order.index(k) < order.index(key)]
            _insert_key(existing, before[-1] + 1 if before else 0, key, _yaml_value(value))
        if index is None:
            _blank_line_after(seq)
            seq.append(existing)
    buf = io.StringIO()
    rt.dump(data, buf)
    _, problems = parse_sources(yaml.safe_load(buf.getvalue()), str(path))
    mine = [p for p in problems if p.startswith(f"source {source_id}:") or "top level" in p]
    if mine:
        raise ConfigError("; ".join(mine))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # a new sources file may be the first thing in its folder
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be written ({exc}): check that its folder is writable") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(buf.getvalue())
            out.flush()
            os.fsync(out.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove_entry(seq: Any, index: int) -> None:
    """Delete an entry; the comment after it (which ruamel keeps on its last key) heads the next entry, so keep it."""
    entry = seq[index]
    if index > 0 and isinstance(entry, dict) and entry and isinstance(seq[index - 1], dict) and seq[index - 1]:
        last, prev_last = list(entry)[-1], list(seq[index - 1])[-1]
        trailing = entry.ca.items.get(last)
        if trailing is not None:
            seq[index - 1].ca.items[prev_last] = trailing
    del seq[index]


def _insert_key(entry: Any, pos: int, key: str, value: Any) -> None:
    """Insert a key; at the end, it takes over the blank line or comment that followed the old last key."""
    if pos >= len(entry) and len(entry):
        last = list(entry)[-1]
        trailing = entry.ca.items.pop(last, None)
        entry.insert(pos, key, value)
        if trailing is not None:
            entry.ca.items[key] = trailing
        return
    entry.insert(pos, key, value)


def _blank_line_after(seq: Any) -> None:
    """Separate a new entry from the one before by a blank line, as the rest of the file does."""
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    if not len(seq) or not isinstance(seq[-1], dict) or not seq[-1]:
        return
    prev = seq[-1]
    last = list(prev)[-1]
    if prev.ca.items.get(last) is None:
        prev.ca.items[last] = [None, None, CommentToken("\n\n", CommentMark(0), None), None]
