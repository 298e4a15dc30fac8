"""One settings object for every stage; values come from flags, then SSEHUB_* env vars, then defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """ssehub settings. Every field can be set with an environment variable SSEHUB_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="SSEHUB_", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Folder of the store and index files.")
    sources: Path = Field(Path("sources.yaml"), description="The sources file.")
    user_agent: str = Field(
        "ssehub/0.1 (+https://github.com/ssehub/ssehub; SSE knowledge hub harvester)",
        description="User agent sent on every harvest request.",
    )
    default_delay: float = Field(1.0, description="Seconds between requests to one source when it sets none.")
    request_timeout: float = Field(30.0, description="Seconds before a harvest request is abandoned.")
    max_page_bytes: int = Field(20_000_000, description="Largest response the harvester downloads (bytes).")
    # bench/harvest.py, 2,000 pages, one run: one batched worker 115.7 pages/s (1.63 cores busy), inline 67.6 (1.01).
    extract_workers: int = Field(-1, description="Extraction worker processes in a harvest; 0 = on the crawler thread, -1 = cores - 1.")
    model_path: str = Field("", description="Sentence-transformers model folder; empty = the packaged all-MiniLM-L6-v2.")
    chunk_tokens: int = Field(200, description="Word-piece tokens per chunk (the model reads at most 256).")
    chunk_overlap: int = Field(40, description="Tokens shared by consecutive chunks.")
    torch_threads: int = Field(1, description="Torch intra-op threads (more than one hurts on 2 cores).")
    embed_backend: str = Field(
        "auto", description="Runs the sentence-transformers model: auto (what the existing index was built with, onnx-int8 "
        "for a new one), onnx (ONNX Runtime, torch's vectors), onnx-int8 (int8v3: ~1.5x the passages per CPU-second, "
        "SciFact nDCG@10 within 0.003), onnx-int8v2 (what an index built before v3 keeps), or torch; onnx uses "
        "torch_threads too."
    )
    sdg_threshold: float = Field(0.0, description="Extra offset on the tagger's per-goal thresholds.")
    curator_keys: str = Field("", description="Comma-separated bearer keys for curator endpoints.")
    cors_origins: str = Field("", description="Comma-separated origins allowed to call read endpoints.")
    rate_limit: int = Field(0, description="Requests per minute per client; 0 turns the limit off.")
    allow_private_sources: bool = Field(
        False, description="Let sources added through the API point at private, loopback or link-local hosts."
    )
    host: str = Field("127.0.0.1", description="Address `ssehub serve` listens on.")
    port: int = Field(8000, description="Port `ssehub serve` listens on.")
    index_workers: int = Field(
        -1, description="Embedding processes of `ssehub index` (one torch thread each); -1 = one per core, 0 = none."
    )
    retry_backoff: float = Field(
        1.0, ge=0, description="Seconds before the first retry of a 5xx or 429 without Retry-After; doubles with each retry."
    )

    @property
    def store_path(self) -> Path:
        """The SQLite store."""
        return self.data_dir / "ssehub.db"

    @property
    def index_dir(self) -> Path:
        """Folder of the FAISS index and its manifest."""
        return self.data_dir / "index"

    def curator_key_list(self) -> list[str]:
        """Curator keys, empty strings dropped."""
        return [k.strip() for k in self.curator_keys.split(",") if k.strip()]

    def cors_origin_list(self) -> list[str]:
        """Origins allowed by CORS."""
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]
