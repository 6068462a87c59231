"""Obtain the DMTF CIM Schema 2.49 MOFs for tests and benchmarks, from pywbem's source distribution.

The sdist (``pip download --no-deps --no-binary :all: pywbem==1.9.1``) ships
``tests/schema/cim_schema_2.49.0Final-MOFs.zip``; it is unpacked once under ``.cache/cim_schema/`` (git
ignores ``.cache/``) and never committed.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "cim_schema"
PYWBEM = "pywbem==1.9.1"
SDIST = "pywbem-1.9.1.tar.gz"
ZIP_MEMBER = "pywbem-1.9.1/tests/schema/cim_schema_2.49.0Final-MOFs.zip"
TOP_MOF = "cim_schema_2.49.0.mof"
CLASS_COUNT = 1631


class SchemaUnavailable(RuntimeError):
    """The schema could not be downloaded or unpacked (the message says why)."""


def cim_schema_mof() -> Path:
    """The path of ``cim_schema_2.49.0.mof`` (it includes the other 1,633 files), fetched if needed."""
    target = CACHE / "schema" / TOP_MOF
    if target.is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    sdist = CACHE / SDIST
    if not sdist.is_file():
        _download(sdist)
    try:
        with tarfile.open(sdist) as tar:
            member = tar.extractfile(ZIP_MEMBER)
            if member is None:
                raise SchemaUnavailable(f"{SDIST} has no {ZIP_MEMBER}")
            data = member.read()
    except (tarfile.TarError, KeyError, OSError) as exc:
        raise SchemaUnavailable(f"cannot read {ZIP_MEMBER} from {sdist}: {exc}") from exc
    tmp = Path(tempfile.mkdtemp(dir=CACHE, prefix="unpack-"))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            zf.extractall(tmp)
        if not (tmp / TOP_MOF).is_file():
            raise SchemaUnavailable(f"the zip has no {TOP_MOF}")
        try:
            os.rename(tmp, CACHE / "schema")  # atomic: a concurrent run either wins or finds it done
        except OSError:
            if not target.is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _download(dest: Path) -> None:
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
               PYWBEM, "-d", tmp]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SchemaUnavailable(f"pip download {PYWBEM} failed: {exc}") from exc
        got = Path(tmp) / SDIST
        if proc.returncode != 0 or not got.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise SchemaUnavailable(f"pip download {PYWBEM} failed: {' / '.join(tail) or proc.returncode}")
        os.replace(got, dest)


if __name__ == "__main__":
    try:
        print(cim_schema_mof())
    except SchemaUnavailable as exc:
        print(f"CIM Schema unavailable: {exc}", file=sys.stderr)
        sys.exit(1)
