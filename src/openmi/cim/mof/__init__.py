"""MOF: compile Managed Object Format text into qualifier declarations, classes and instances, and write
classes and instances back as MOF, as omicli's brace syntax and as MI_XML.

``compile_mof`` is pure: it reads files and text and returns objects; the engine loads them.
"""

from .compiler import MOFResult, compile_mof
from .writer import to_mof

__all__ = ["MOFResult", "compile_mof", "to_mof"]
