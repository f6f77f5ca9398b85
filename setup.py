"""Build pimdram's private Cython extension modules from cext/pimdram/.

Compiler directives are set once here. PIMDRAM_CYTHON_CHECKS=1 turns bounds and
wrap-around checks back on (for debugging and CI runs that want them). PIMDRAM_CYTHON_COVERAGE=1
builds with line tracing for Cython's coverage plugin (slow: tools/cython_coverage.sh uses it in
a separate copy of the tree, never for a normal install).
"""
import os
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent
CHECKS = os.environ.get("PIMDRAM_CYTHON_CHECKS", "0") == "1"
COVERAGE = os.environ.get("PIMDRAM_CYTHON_COVERAGE", "0") == "1"

directives = {
    "language_level": "3",
    "boundscheck": CHECKS,
    "wraparound": CHECKS,
    "initializedcheck": CHECKS,
    "cdivision": True,
    "embedsignature": True,
}
if COVERAGE:
    directives["linetrace"] = True

extensions = [
    Extension(
        "pimdram." + pyx.stem,
        [str(pyx.relative_to(HERE))],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
        # the engine's `cdef inline` helpers are always inlined: gcc's size heuristics otherwise
        # drop the specialised copies of the tick (constant bank-mask words and levels) into
        # out-of-line functions where those are variables again
        + ([("CYTHON_INLINE", "__inline__ __attribute__((always_inline, unused))")] if pyx.stem == "_engine" else [])
        + ([("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")] if COVERAGE else []),
        extra_compile_args=["-O3", "-fno-tree-loop-distribute-patterns"],
    )
    for pyx in sorted((HERE / "cext" / "pimdram").glob("*.pyx"))
]


def config_data_files():
    """Ship configs/ so an installed (non-editable) pimdram finds its presets."""
    out = {}
    for path in sorted((HERE / "configs").rglob("*.yaml")):
        rel = path.relative_to(HERE)
        out.setdefault(str(Path("share/pimdram") / rel.parent), []).append(str(rel))
    return sorted(out.items())


setup(
    ext_modules=cythonize(
        extensions,
        include_path=[str(HERE / "cext")],
        compiler_directives=directives,
    ),
    data_files=config_data_files(),
)
