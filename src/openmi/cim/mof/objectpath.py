"""Object paths written as strings in MOF (``"CIM_Disk.DeviceID=\\"C:\\",Sys=5"``).

The parser lives in :mod:`openmi.cim.objectpath` (one for all of openmi); MOF writes the DMTF form.
"""

from __future__ import annotations

from ..instance import Instance
from ..objectpath import Reference, parse_object_path
from ..objectpath import format_object_path as _format

__all__ = ["Reference", "format_object_path", "parse_object_path"]


def format_object_path(inst: Instance) -> str:
    """The DMTF form of an instance's path (keys only): ``//server/root/cimv2:Class.Key="v"``."""
    return _format(inst, "dmtf")
