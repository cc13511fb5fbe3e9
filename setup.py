"""Build of the compiled stages: every `*.pyx` beside its pure-Python twin, and
the modules compiled from their pure-Python source under a twin name (PY_TWINS).

`pip install -e .` (what `make test` and `make run` do) compiles them with the
machine's C compiler. Each extension is optional: where none can be built, the
package still installs and runs on its pure-Python modules, which stay the
reference implementation. `FIXGW_PURE=1` at build time skips compiling; at run
time it makes every module use its pure-Python twin (see `fixgw_pure()` in the
modules that pick one).
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import Extension, setup

PACKAGES = ("fix_gateway", "engine", "session_store", "drop_copy", "surveillance")
# Twins compiled from the pure-Python source itself, under another module name, so
# that both load side by side (tests hold one against the other). Cython reads the
# augmenting declarations for each from the .pxd of the twin's name
# (engine/compiled/book.pxd for engine.compiled.book).
PY_TWINS = {
    "engine.compiled.book": "engine/book.py",
    "engine.compiled.engine": "engine/engine.py",
}


def compiled_stages() -> list[Extension]:
    if os.environ.get("FIXGW_PURE") == "1":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:  # no Cython: the pure-Python modules serve
        return []
    root = Path(__file__).parent
    sources = sorted(str(p.relative_to(root)) for pkg in PACKAGES
                     for p in (root / pkg).rglob("*.pyx"))
    extensions = [Extension(s[:-4].replace("/", "."), [s], optional=True,
                            extra_compile_args=["-O3"]) for s in sources]
    twins = [Extension(name, [source], optional=True, extra_compile_args=["-O3"])
             for name, source in PY_TWINS.items()]
    directives = {"boundscheck": False, "wraparound": False, "cdivision": True,
                  "embedsignature": True}
    # The twins keep Python's semantics exactly (IndexError, negative indices, floor
    # division and modulo of negatives), and take their types from their .pxd only:
    # the sources' annotations are for mypy, and Cython typing by them would check
    # argument types the pure module does not.
    return (cythonize(extensions, language_level=3, quiet=True,
                      compiler_directives=directives)
            + cythonize(twins, language_level=3, quiet=True, force=twins_stale(root),
                        compiler_directives={"embedsignature": True,
                                             "annotation_typing": False}))


def twins_stale(root: Path) -> bool:
    """Whether a twin's .pxd changed since its C was generated: Cython's own
    dependency check looks for the .pxd beside the source only, not by the twin's
    module name."""
    pxds = [root / (name.replace(".", "/") + ".pxd") for name in PY_TWINS]
    generated = [root / Path(source).with_suffix(".c") for source in PY_TWINS.values()]
    if not all(c.exists() for c in generated):
        return True
    newest_pxd = max((p.stat().st_mtime for p in pxds if p.exists()), default=0.0)
    return newest_pxd > min(c.stat().st_mtime for c in generated)


setup(ext_modules=compiled_stages())
