"""The servers of tests/wsman_server (users alice rw, reader r; Sample_Person, Sample_Watched), shared here."""

from tests.wsman_server.conftest import served, served_unencrypted

__all__ = ["served", "served_unencrypted"]
