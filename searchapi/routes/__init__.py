"""One router per resource; each calls the plain Searcher and Store objects."""
