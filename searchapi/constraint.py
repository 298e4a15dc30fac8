"""What a query's operators allow: documents with its phrases, title: items and authors, without its -terms."""

from __future__ import annotations

from dataclasses import dataclass, field

from searchapi.query import ParsedQuery
from ssehub.store import Store


@dataclass
class Constraint:
    """Documents a query restricts to (None: any) and those it excludes."""

    allowed: set[str] | None = None
    excluded: set[str] = field(default_factory=set)

    def admits(self, doc_id: str) -> bool:
        """True when the document may be a result."""
        return (self.allowed is None or doc_id in self.allowed) and doc_id not in self.excluded


def constraint_of(parsed: ParsedQuery, store: Store) -> Constraint:
    """Documents allowed by the query's phrases, title: and author: items (all must hold), less those with a -term.

    Phrases are matched by FTS5 within one chunk, so a phrase cut by a chunk boundary is found in the overlap only.
    """
    out = Constraint()
    if not parsed.constrained:
        return out
    sets = [store.keyword_documents(expr) for expr in parsed.required()]
    sets += [store.author_documents(name) for name in parsed.authors]
    if sets:
        out.allowed = set.intersection(*sets)
    for expr in parsed.exclusions():
        out.excluded |= store.keyword_documents(expr)
    return out
