#!/bin/sh
# Line coverage of the Cython engine (cext/pimdram/*.pyx and .pxi) and of the Python package, as a
# separate run that CI can schedule on its own (it is not part of `pytest`: a traced build runs
# several times slower, and must not replace the optimised one a developer uses).
#
#   tools/cython_coverage.sh                      # the whole default suite
#   tools/cython_coverage.sh tests/test_controller.py tests/test_timing_hbm2.py   # some of it
#   PIMDRAM_COVERAGE_DIR=/tmp/cov tools/cython_coverage.sh   # keep the venv, build and report
#
# What it does: copies the tracked files of this checkout to $PIMDRAM_COVERAGE_DIR/src (default: a
# new temporary directory), makes a venv there, installs the copy with PIMDRAM_CYTHON_COVERAGE=1
# (setup.py then compiles with Cython's `linetrace` directive and CYTHON_TRACE_NOGIL, so the
# nogil loops are traced too) plus coverage and Cython, runs pytest under coverage with Cython's
# coverage plugin (Cython.Coverage), and prints the report; an HTML report goes to
# $PIMDRAM_COVERAGE_DIR/htmlcov. Needs network or a package index for the venv, and a C compiler.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${PIMDRAM_COVERAGE_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/pimdram-coverage.XXXXXX")}
PYTHON=${PYTHON:-python3}
mkdir -p "$WORK/src"
(cd "$ROOT" && git ls-files -z -co --exclude-standard | xargs -0 tar cf -) | (cd "$WORK/src" && tar xf -)
if [ ! -x "$WORK/venv/bin/python" ]; then
    "$PYTHON" -m venv "$WORK/venv"
fi
. "$WORK/venv/bin/activate"
pip install -q --upgrade pip
pip install -q "Cython>=3.0" "coverage>=7" numpy setuptools wheel
# an in-place (editable) build of the copy, traced; no build isolation, so the Cython above builds it
(cd "$WORK/src" && PIMDRAM_CYTHON_COVERAGE=1 pip install -q --no-build-isolation -e ".[test]")
cd "$WORK/src"
cat > .coveragerc <<'RC'
[run]
plugins = Cython.Coverage
source = pimdram
         cext/pimdram
parallel = false

[report]
show_missing = false
skip_empty = true
RC
python -m coverage erase
python -m coverage run -m pytest -q -p no:cacheprovider "$@"
python -m coverage report
python -m coverage html -q -d "$WORK/htmlcov"
echo "HTML report: $WORK/htmlcov/index.html"
