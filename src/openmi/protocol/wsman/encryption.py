"""WinRM HTTP message encryption framing (MS-WSMV 2.2.9.1): build and parse ``multipart/encrypted`` bodies.

Sans-I/O and shared by server and client: the caller passes its security context (anything with pyspnego's
``wrap_winrm``/``unwrap_winrm``), this module only knows the layout around the sealed bytes::

    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/HTTP-SPNEGO-session-encrypted\\r\\n
    \\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=<plaintext length>\\r\\n
    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/octet-stream\\r\\n
    <uint32 LE header length><header: NTLM signature, RFC 4121 token or TLS trailer><sealed bytes>
    --Encrypted Boundary--\\r\\n

CredSSP bodies over 16 KiB are sealed in 16 KiB chunks, one part pair per chunk, as ``multipart/x-multi-encrypted``.

WinRM and the Python clients indent the part headers with a tab and pywinrm finds the data part only so; OMI
writes them without one and its client finds them only so. A reader takes both (:attr:`Decrypted.indent` says
which came), and a server answers in the style it was asked in. OMI's client also pads the plaintext with NULs
to a multiple of 16 octets and counts them in Length=: up to 15 trailing NULs are dropped from a UTF-8 body
(its XML ends otherwise).
"""

from __future__ import annotations

import itertools
import re
import struct
from typing import NamedTuple, Protocol

SPNEGO = "application/HTTP-SPNEGO-session-encrypted"
KERBEROS = "application/HTTP-Kerberos-session-encrypted"
CREDSSP = "application/HTTP-CredSSP-session-encrypted"
PROTOCOLS = (SPNEGO, KERBEROS, CREDSSP)

BOUNDARY = "Encrypted Boundary"
ENCRYPTED = "multipart/encrypted"
MULTI_ENCRYPTED = "multipart/x-multi-encrypted"
SOAP_UTF8 = "application/soap+xml;charset=UTF-8"
CREDSSP_CHUNK = 16384

# pypsrp counts Kerberos padding in Length= although MS-WSMV says no padding is added; RFC 4121 pads by less than
# one cipher block, so a Length that exceeds the plaintext by up to this much is accepted for Kerberos only.
_KERBEROS_PADDING_MAX = 16


# OMI's client pads the plaintext with NULs to a multiple of 16 octets (and counts them in Length=)
_NUL_PADDING_MAX = 15


class EncryptionError(ValueError):
    """An encrypted body that is malformed, or whose decrypted length does not match what it announced."""


class WrapResult(Protocol):
    @property
    def header(self) -> bytes: ...

    @property
    def data(self) -> bytes: ...


class SecurityContext(Protocol):
    """What this module needs of a security context; pyspnego's ``ContextProxy`` is one."""

    def wrap_winrm(self, data: bytes) -> WrapResult: ...

    def unwrap_winrm(self, header: bytes, data: bytes) -> bytes: ...


class Decrypted(NamedTuple):
    content_type: str  # of the plaintext, from OriginalContent, e.g. application/soap+xml;charset=UTF-8
    body: bytes
    protocol: str  # one of PROTOCOLS
    indent: str = "\t"  # how the part headers were indented: "\t" (WinRM, pywinrm) or "" (OMI)


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """The lower-case media type and its parameters (names lower-case, quotes removed)."""
    media, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for m in re.finditer(r'\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)\s*(?:;|$)', rest):
        v = m.group(2).strip()
        if v.startswith('"') and v.endswith('"') and len(v) >= 2:
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        params[m.group(1).lower()] = v
    return media.strip().lower(), params


def is_encrypted(content_type: str | None) -> bool:
    """Whether a Content-Type announces a WinRM encrypted body."""
    if not content_type or content_type[:16].lower() == "application/soap":  # the plain case, cheaply
        return False
    return parse_content_type(content_type)[0] in (ENCRYPTED, MULTI_ENCRYPTED)


def _canonical_protocol(value: str) -> str:
    for p in PROTOCOLS:
        if p.lower() == value.strip().lower():
            return p
    raise EncryptionError(f"unknown encryption protocol {value!r}")


def encrypt(context: SecurityContext, body: bytes, *, protocol: str = SPNEGO,
            content_type: str = SOAP_UTF8, indent: str = "\t") -> tuple[str, bytes]:
    """The Content-Type header value and the body for *body* sealed by *context*; *indent* before each part
    header ("\t" as WinRM writes them, "" as OMI does)."""
    if indent not in ("\t", ""):
        raise ValueError(f"the part headers are indented by a tab or nothing, not {indent!r}")
    protocol = _canonical_protocol(protocol)
    chunked = protocol == CREDSSP and len(body) > CREDSSP_CHUNK
    chunks = [body[i:i + CREDSSP_CHUNK] for i in range(0, len(body), CREDSSP_CHUNK)] if chunked else [body]
    out = bytearray()
    for chunk in chunks:
        wrapped = context.wrap_winrm(chunk)
        out += (f"--{BOUNDARY}\r\n"
                f"{indent}Content-Type: {protocol}\r\n"
                f"{indent}OriginalContent: type={content_type};Length={len(chunk)}\r\n"
                f"--{BOUNDARY}\r\n"
                f"{indent}Content-Type: application/octet-stream\r\n").encode("ascii")
        out += struct.pack("<I", len(wrapped.header)) + wrapped.header + wrapped.data
    out += f"--{BOUNDARY}--\r\n".encode("ascii")
    media = MULTI_ENCRYPTED if chunked else ENCRYPTED
    return f'{media};protocol="{protocol}";boundary="{BOUNDARY}"', bytes(out)


_OCTET_STREAM = re.compile(rb"[ \t]*Content-Type:[ \t]*application/octet-stream[ \t]*\r\n", re.IGNORECASE)


def decrypt(context: SecurityContext, content_type: str, body: bytes) -> Decrypted:
    """The plaintext of an encrypted body.

    Raises :class:`EncryptionError` for a malformed body; whatever *context*'s ``unwrap_winrm`` raises for a bad
    signature propagates (the caller decides how to treat it, usually by refusing the request).
    """
    media, params = parse_content_type(content_type)
    if media not in (ENCRYPTED, MULTI_ENCRYPTED):
        raise EncryptionError(f"{media!r} is not an encrypted body")
    protocol = _canonical_protocol(params.get("protocol", ""))
    boundary = params.get("boundary") or BOUNDARY
    # Exchange writes "-- Encrypted Boundary"; the closing delimiter may lack its CRLF at the very end.
    delimiter = re.compile(rb"--[ \t]*" + re.escape(boundary.encode("latin-1")) + rb"(--)?[ \t]*(?:\r\n|\Z)")
    marks = list(delimiter.finditer(body))
    if not marks or marks[0].start() != 0:
        raise EncryptionError("encrypted body does not start with the boundary")
    last = marks[-1]
    if last.group(1) is None or body[last.end():].strip():
        raise EncryptionError("encrypted body is truncated (no closing boundary)")
    if any(m.group(1) is not None for m in marks[:-1]):
        raise EncryptionError("closing boundary before the end of the encrypted body")
    segments = [body[a.end():b.start()] for a, b in itertools.pairwise(marks)]
    if len(segments) % 2 or not segments:
        raise EncryptionError("encrypted body must hold pairs of parts")
    if media == ENCRYPTED and len(segments) != 2:
        raise EncryptionError("multipart/encrypted must hold exactly one pair of parts")

    plain = bytearray()
    original_type = ""
    for i in range(0, len(segments), 2):
        part_type, length = _metadata(segments[i], protocol)
        original_type = original_type or part_type
        head = _OCTET_STREAM.match(segments[i + 1])
        if head is None:
            raise EncryptionError("encrypted data part lacks Content-Type: application/octet-stream")
        payload = segments[i + 1][head.end():]
        if len(payload) < 4:
            raise EncryptionError("encrypted data part is too short")
        (header_length,) = struct.unpack("<I", payload[:4])
        if 4 + header_length > len(payload):
            raise EncryptionError("encrypted data part header length exceeds the part")
        chunk = context.unwrap_winrm(payload[4:4 + header_length], payload[4 + header_length:])
        excess = length - len(chunk)
        if excess != 0 and not (protocol == KERBEROS and 0 < excess <= _KERBEROS_PADDING_MAX):
            raise EncryptionError(f"decrypted length {len(chunk)} does not match the announced Length={length}")
        plain += chunk
    # OMI's client: NULs up to a multiple of 16 octets (a UTF-16 body may end in a NUL octet of its own)
    padded = 0 if "utf-16" in original_type.lower() else len(plain) - len(plain.rstrip(b"\0"))
    if padded:
        if padded > _NUL_PADDING_MAX:
            raise EncryptionError(f"the decrypted body ends with {padded} NUL octets")
        del plain[-padded:]
    indent = "" if segments[0][:1] not in (b"\t", b" ") else "\t"
    return Decrypted(original_type, bytes(plain), protocol, indent)


def _metadata(segment: bytes, protocol: str) -> tuple[str, int]:
    """The original content type and Length= of a metadata part."""
    fields: dict[str, str] = {}
    for line in segment.decode("latin-1").split("\r\n"):
        name, sep, value = line.strip().partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    if _canonical_protocol(fields.get("content-type", "")) != protocol:
        raise EncryptionError("encrypted part protocol differs from the Content-Type header")
    original = fields.get("originalcontent")
    if original is None:
        raise EncryptionError("encrypted part lacks OriginalContent")
    kept: list[str] = []
    length: int | None = None
    for item in original.split(";"):
        key, _, value = item.strip().partition("=")
        if key.lower() == "length":
            if not re.fullmatch(r"[0-9]{1,10}", value):
                raise EncryptionError(f"bad OriginalContent Length {value!r}")
            length = int(value)
        elif key.lower() == "type":
            kept.append(value)
        elif item.strip():
            kept.append(item.strip())
    if length is None or not kept:
        raise EncryptionError("OriginalContent lacks type= or Length=")
    return ";".join(kept), length
