"""The servers of tests/wsman_server (users alice rw, reader r; Sample_Person, Sample_Watched), shared here."""

import os
from pathlib import Path

from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

from tests.wsman_server.conftest import served, served_unencrypted

__all__ = ["served", "served_unencrypted"]


# The fuzz properties: a short pass in the suite, a long one with HYPOTHESIS_PROFILE=fuzz (make fuzz), whose
# example database lives in the repository so what a long run found is replayed by every short one.
_DB = DirectoryBasedExampleDatabase(str(Path(__file__).resolve().parents[1] / "fuzz" / "hypothesis"))
settings.register_profile("security", max_examples=25, deadline=None, database=_DB, print_blob=True)
settings.register_profile("fuzz", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "20000")), deadline=None,
                          database=_DB, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "security"))
