"""The compiled twin of the matching engine: `engine.book` and `engine.engine`
compiled by Cython from the same source files, as `engine.compiled.book` and
`engine.compiled.engine`.

This package holds no Python of its own: setup.py compiles engine/book.py and
engine/engine.py under these module names, and the `.pxd` files here are
Cython's "augmenting" declarations for them (typed C fields for the book's
orders and levels, C-level calls between the engine's methods). The pure
modules stay the reference; `engine.MatchingEngine` picks the compiled one
when it is built and `FIXGW_PURE=1` is not set. Where nothing is built,
importing `engine.compiled.engine` raises ImportError.
"""
