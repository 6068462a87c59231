#!/usr/bin/env bash
# Downloads pywbem's sdist (once) and unpacks the DMTF CIM Schema 2.49 MOFs under .cache/cim_schema/;
# prints the path of cim_schema_2.49.0.mof. The tests and bench/bench_mof.py do the same on their own.
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
exec "$PY" tests/cim/mof_schema.py
