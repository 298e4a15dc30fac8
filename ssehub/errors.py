"""The exception tree; library code raises these, the CLI and the routes translate them.

    SsehubError
    ├── ConfigError        bad settings or sources.yaml
    ├── SourceError        a source cannot be harvested
    ├── StoreError         the store is missing, locked or from a newer version
    ├── ImportFormatError  a JSON-lines import file is unusable as a whole
    ├── IndexNotBuilt      search asked before `ssehub index`
    └── NotFound           a document, source or run id that does not exist
"""


class SsehubError(Exception):
    """Base of every error ssehub raises on purpose."""


class ConfigError(SsehubError):
    """Settings or sources.yaml are invalid."""


class SourceError(SsehubError):
    """A source cannot be harvested."""


class StoreError(SsehubError):
    """The store cannot be opened or written."""


class ImportFormatError(SsehubError):
    """An import file cannot be read at all."""


class IndexNotBuilt(SsehubError):
    """No search index exists yet."""


class NotFound(SsehubError):
    """An id that does not exist."""
