"""Build of the compiled stages: every `*.pyx` beside its pure-Python twin.

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
    return cythonize(extensions, language_level=3, quiet=True,
                     compiler_directives={"boundscheck": False, "wraparound": False,
                                          "cdivision": True, "embedsignature": True})


setup(ext_modules=compiled_stages())
