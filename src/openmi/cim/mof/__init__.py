"""MOF: compile Managed Object Format text into qualifier declarations, classes and instances, and write
classes and instances back as MOF, as omicli's brace syntax and as MI_XML.

``compile_mof`` is pure: it reads files and text and returns objects; the engine loads them.
"""

from .brace import BraceError, format_brace, parse_brace
from .compiler import MOFResult, compile_mof, standard_lookup
from .mixml import to_mi_xml
from .objectpath import parse_object_path
from .standard import STANDARD_QUALIFIERS_MOF, standard_qualifiers
from .writer import to_mof

__all__ = ["STANDARD_QUALIFIERS_MOF", "BraceError", "MOFResult", "compile_mof", "format_brace", "parse_brace",
           "parse_object_path", "standard_lookup", "standard_qualifiers", "to_mi_xml", "to_mof"]
