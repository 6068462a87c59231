"""WinRM message encryption framing: exact bytes out, plaintext back, and every malformed body refused."""

from __future__ import annotations

import struct
from typing import NamedTuple

import pytest
from pypsrp.encryption import WinRMEncryption

from openmi.protocol.wsman import encryption
from openmi.protocol.wsman.encryption import CREDSSP, KERBEROS, SPNEGO, EncryptionError, decrypt, encrypt


class _Wrapped(NamedTuple):  # shaped like pyspnego's WinRMWrapResult, which pypsrp unpacks
    header: bytes
    data: bytes
    padding_length: int = 0


class XorContext:
    """A stand-in security context: the 'signature' is a checksum, sealing is XOR with 0x5A."""

    def __init__(self, header_size: int = 16, padding: int = 0) -> None:
        self.header_size = header_size
        self.padding = padding

    def _sig(self, plain: bytes) -> bytes:
        return (sum(plain) % 251).to_bytes(1, "little") * self.header_size

    def wrap_winrm(self, data: bytes) -> _Wrapped:
        return _Wrapped(self._sig(data), bytes(b ^ 0x5A for b in data), self.padding)

    def unwrap_winrm(self, header: bytes, data: bytes) -> bytes:
        plain = bytes(b ^ 0x5A for b in data)
        if header != self._sig(plain):
            raise ValueError("bad signature")
        return plain


SOAP = b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>'


def test_layout_is_byte_exact() -> None:
    ctx = XorContext()
    ctype, body = encrypt(ctx, SOAP)
    assert ctype == ('multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";'
                     'boundary="Encrypted Boundary"')
    w = ctx.wrap_winrm(SOAP)
    expected = (b"--Encrypted Boundary\r\n"
                b"\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
                b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + str(len(SOAP)).encode() +
                b"\r\n--Encrypted Boundary\r\n"
                b"\tContent-Type: application/octet-stream\r\n"
                + struct.pack("<I", 16) + w.header + w.data +
                b"--Encrypted Boundary--\r\n")
    assert body == expected


def test_round_trip_keeps_the_original_content_type() -> None:
    ctx = XorContext()
    ctype, body = encrypt(ctx, SOAP, content_type="application/soap+xml;charset=UTF-16")
    plain = decrypt(ctx, ctype, body)
    assert plain == (  # a NamedTuple compares as a tuple
        "application/soap+xml;charset=UTF-16", SOAP, SPNEGO, "\t")
    assert encryption.is_encrypted(ctype)
    assert not encryption.is_encrypted("application/soap+xml;charset=UTF-8")
    assert not encryption.is_encrypted(None)


def test_empty_plaintext_round_trips() -> None:
    ctx = XorContext()
    assert decrypt(ctx, *encrypt(ctx, b"")).body == b""


def test_pypsrp_reads_ours_and_we_read_pypsrps() -> None:
    ctx = XorContext()
    theirs = WinRMEncryption(ctx, WinRMEncryption.SPNEGO)
    their_type, their_body = theirs.wrap_message(SOAP)
    header = f'{their_type};protocol="{WinRMEncryption.SPNEGO}";boundary="Encrypted Boundary"'
    assert decrypt(ctx, header, their_body).body == SOAP
    _, ours = encrypt(ctx, SOAP)
    assert theirs.unwrap_message(ours, "Encrypted Boundary") == SOAP


def test_credssp_large_bodies_go_in_16k_chunks() -> None:
    ctx = XorContext(header_size=5)
    big = bytes(range(256)) * 160  # 40 960 bytes: three chunks
    ctype, body = encrypt(ctx, big, protocol=CREDSSP)
    assert ctype.startswith('multipart/x-multi-encrypted;protocol="application/HTTP-CredSSP-session-encrypted"')
    assert body.count(b"\tOriginalContent:") == 3
    assert b"Length=16384\r\n" in body and b"Length=8192\r\n" in body
    assert decrypt(ctx, ctype, body).body == big
    assert WinRMEncryption(ctx, WinRMEncryption.CREDSSP).unwrap_message(body, "Encrypted Boundary") == big
    their_type, theirs = WinRMEncryption(ctx, WinRMEncryption.CREDSSP).wrap_message(big)
    assert decrypt(ctx, f'{their_type};protocol="{CREDSSP}";boundary="Encrypted Boundary"', theirs).body == big


def test_small_credssp_and_large_spnego_bodies_are_single_parts() -> None:
    ctx = XorContext()
    assert encrypt(ctx, b"x" * 16384, protocol=CREDSSP)[0].startswith("multipart/encrypted;")
    assert encrypt(ctx, b"x" * 50000, protocol=SPNEGO)[1].count(b"OriginalContent") == 1


def test_exchange_boundary_with_a_space_is_accepted() -> None:
    ctx = XorContext()
    ctype, body = encrypt(ctx, SOAP)
    assert decrypt(ctx, ctype, body.replace(b"--Encrypted Boundary", b"-- Encrypted Boundary")).body == SOAP


def test_kerberos_length_may_count_padding_spnego_may_not() -> None:
    ctx = XorContext()
    for protocol, ok in ((KERBEROS, True), (SPNEGO, False)):
        ctype, body = encrypt(ctx, SOAP, protocol=protocol)
        padded = body.replace(f"Length={len(SOAP)}".encode(), f"Length={len(SOAP) + 8}".encode())
        if ok:
            assert decrypt(ctx, ctype, padded).body == SOAP
        else:
            with pytest.raises(EncryptionError, match="Length"):
                decrypt(ctx, ctype, padded)


def test_omis_style_untabbed_and_nul_padded() -> None:
    """OMI writes the part headers without the tab (and its client finds them only so), and its client pads the
    plaintext with NULs to a multiple of 16 octets, counted in Length=: both are read, the padding dropped, and
    the style reported so that a server answers in it."""
    ctx = XorContext()
    ctype, tabbed = encrypt(ctx, SOAP)
    assert decrypt(ctx, ctype, tabbed).indent == "\t"
    _, plain = encrypt(ctx, SOAP, indent="")
    assert b"\t" not in plain.split(b"octet-stream")[0] and b"\r\nContent-Type: application/octet-stream" in plain
    got = decrypt(ctx, ctype, plain)
    assert got.body == SOAP and got.indent == ""
    pad = -len(SOAP) % 16 or 16
    padded = SOAP + b"\0" * (pad if pad < 16 else 0)
    _, body = encrypt(ctx, padded, indent="")
    assert decrypt(ctx, ctype, body).body == SOAP  # (Length counts the NULs: OMI's client announces them)
    _, body = encrypt(ctx, SOAP + b"\0" * 16, indent="")
    with pytest.raises(EncryptionError, match="NUL"):
        decrypt(ctx, ctype, body)
    utf16 = SOAP.decode().encode("utf-16-le")  # ends with a NUL octet of its own: kept
    ctype16, body = encrypt(ctx, utf16, content_type="application/soap+xml;charset=UTF-16")
    assert decrypt(ctx, ctype16, body).body == utf16
    with pytest.raises(ValueError, match="tab"):
        encrypt(ctx, SOAP, indent="  ")


def _good() -> tuple[str, bytes]:
    return encrypt(XorContext(), SOAP)


@pytest.mark.parametrize("mutate", [
    pytest.param(lambda t, b: (t, b[:-24]), id="no-closing-boundary"),
    pytest.param(lambda t, b: (t, b + b"junk"), id="trailing-junk"),
    pytest.param(lambda t, b: (t, b"x" + b), id="preamble"),
    pytest.param(lambda t, b: (t, b.replace(b"Length=", b"Length=1")), id="wrong-length"),
    pytest.param(lambda t, b: (t, b.replace(b"Length=", b"Length=-")), id="bad-length"),
    pytest.param(lambda t, b: (t, b.replace(b"\tOriginalContent", b"\tOtherContent")), id="no-original-content"),
    pytest.param(lambda t, b: (t, b.replace(b"application/octet-stream", b"text/plain")), id="not-octet-stream"),
    pytest.param(lambda t, b: (t, b.replace(b"\x10\x00\x00\x00", b"\xff\x00\x00\x00")), id="header-overflow"),
    pytest.param(lambda t, b: (t, b.replace(b"-session-encrypted\r\n", b"-session-encryptet\r\n")),
                 id="part-protocol"),
    pytest.param(lambda t, b: (t.replace("SPNEGO", "Kerberos"), b), id="protocol-mismatch"),
    pytest.param(lambda t, b: (t.replace("SPNEGO", "Nonsense"), b), id="unknown-protocol"),
    pytest.param(lambda t, b: ("application/soap+xml", b), id="not-encrypted"),
    pytest.param(lambda t, b: (t, b[:-24] + b[:-24] + b[-24:]), id="two-pairs-in-multipart-encrypted"),
    pytest.param(lambda t, b: (t, b[:-24] + b"--Encrypted Boundary--\r\n" + b[-24:]), id="early-close"),
])
def test_malformed_bodies_are_refused(mutate: object) -> None:
    ctype, body = mutate(*_good())  # type: ignore[operator]
    with pytest.raises(EncryptionError):
        decrypt(XorContext(), ctype, body)


def test_a_bad_signature_propagates_from_the_context() -> None:
    ctype, body = _good()
    tampered = body[:-30] + bytes([body[-30] ^ 1]) + body[-29:]
    with pytest.raises(ValueError, match="bad signature"):
        decrypt(XorContext(), ctype, tampered)


def test_content_type_parameters() -> None:
    media, params = encryption.parse_content_type(
        'Multipart/Encrypted ; protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"')
    assert media == "multipart/encrypted"
    assert params == {"protocol": SPNEGO, "boundary": "Encrypted Boundary"}
