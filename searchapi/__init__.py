"""The search API and web UI: FastAPI routes over the plain Searcher and Store."""
