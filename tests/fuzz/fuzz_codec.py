"""Coverage-guided fuzzing with atheris (``make fuzz``): what clients send, through the readers that take it.

    python tests/fuzz/fuzz_codec.py TARGET [libFuzzer flags …]
    python tests/fuzz/fuzz_codec.py TARGET -merge=1 NEW_DIR tests/fuzz/corpus/TARGET   # minimize a corpus

TARGET is one of: request (bytes → wsman.parse_request), service (bytes → the server's whole request path,
engine included, without authentication), response (bytes → the client's parse_response), mof, brace,
objectpath, datetime. The corpus of each target lives in tests/fuzz/corpus/TARGET (kept in the repository:
what one run finds, the next starts from); ``--seed`` fills it from the recorded traffic in tests/fixtures.
A finding is an exception other than the reader's own error type: atheris stops and writes the input as
``crash-*`` in the working directory.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"
SOAP = "application/soap+xml;charset=UTF-8"

with atheris.instrument_imports(include=["openmi"]):
    import openmi
    from openmi import MIType
    from openmi.cim.errors import MOFError
    from openmi.cim.mof import compiler as mof_compiler
    from openmi.cim.mof.brace import BraceError, parse_brace
    from openmi.cim.objectpath import parse_object_path
    from openmi.cim.values import parse_datetime
    from openmi.protocol import wsman
    from openmi.protocol.wsman.values import parse_duration, parse_wire_datetime
    from openmi.wsman_server.http import HTTPRequest
    from openmi.wsman_server.service import WSManService


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def request(data: bytes) -> None:
    try:
        wsman.parse_request(data, SOAP)
    except wsman.WSManFault:
        pass


_service: list[object] = []


def service(data: bytes) -> None:
    if not _service:
        engine = openmi.Server(":memory:")
        engine.define_class("root/cimv2", openmi.Class("Sample_Person", properties=[
            openmi.Property("Id", MIType.UINT32, key=True), openmi.Property("Name", MIType.STRING),
            openmi.Property("Born", MIType.DATETIME), openmi.Property("Tags", MIType.STRINGA)]))
        _service.append(WSManService(engine, None).connection("127.0.0.1:1", False))
    conn = _service[0]
    response = conn.handle(HTTPRequest("POST", "/wsman", "HTTP/1.1", {"content-type": SOAP}, data))  # type: ignore[attr-defined]
    if b"could not process the request (internal error)" in response.body:
        raise AssertionError("the service's last resort answered: an exception escaped the request path")


_EXPECTED = [wsman.GetRequest(), wsman.EnumerateRequest(), wsman.PullRequest(context="x"), wsman.CreateRequest(),
             wsman.IdentifyRequest()]


def response(data: bytes) -> None:
    for expected in _EXPECTED:
        try:
            wsman.parse_response(data, SOAP, expected)
        except openmi.MIError:
            pass


def mof(data: bytes) -> None:
    text = _text(data)
    if mof_compiler._looks_like_path(text):
        return
    try:
        mof_compiler.compile_mof(text)
    except MOFError:
        pass


def brace(data: bytes) -> None:
    text = _text(data)
    for source in (text, text.split("\x00")):
        try:
            parse_brace(source)
        except BraceError:
            pass


def objectpath(data: bytes) -> None:
    try:
        parse_object_path(_text(data))
    except ValueError:
        pass


def datetime(data: bytes) -> None:
    text = _text(data)
    for parse in (parse_datetime, parse_wire_datetime, parse_duration):
        try:
            parse(text)
        except ValueError:
            pass


TARGETS: dict[str, Callable[[bytes], None]] = {
    "request": request, "service": service, "response": response, "mof": mof, "brace": brace,
    "objectpath": objectpath, "datetime": datetime,
}

SEEDS: dict[str, list[bytes]] = {
    "mof": [b"class A { [Key] uint32 Id; string S = \"x\"; };", b"instance of A { Id = 1; };",
            b"#pragma namespace(\"root/x\")\nclass B : A { datetime D; A ref R; };"],
    "brace": [b"{ Sample_Person Id 1 Name \"a b\" Tags [ x y ] }", b"{ A R { B Id 2 } }"],
    "objectpath": [b'//host/root/cimv2:Sample_Person.Id=1,Name="x"', b"root\\cimv2:A=@", b'B.R="A.Id=1"'],
    "datetime": [b"20201231235959.123456+060", b"00000001020304.000000:000", b"P1DT2H3M4.5S",
                 b"2020-01-01T00:00:00.5-05:30", b"2020-01-01", b"12:00:00Z"],
}


def seed() -> None:
    """Fill each target's corpus from the recorded requests and responses and a few hand-written inputs."""
    fixtures = ROOT / "tests" / "fixtures"
    requests_ = [p.read_bytes() for p in sorted(fixtures.rglob("*request*.xml"))]
    responses = [p.read_bytes() for p in sorted(fixtures.rglob("*response*.xml"))]
    for target, items in (("request", requests_), ("service", requests_), ("response", responses), *SEEDS.items()):
        d = CORPUS / target
        d.mkdir(parents=True, exist_ok=True)
        for data in items:
            (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--seed":
        seed()
        return
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer flags …] | --seed")
    name = sys.argv[1]
    corpus = CORPUS / name
    corpus.mkdir(parents=True, exist_ok=True)
    rest = sys.argv[2:]
    # libFuzzer re-runs argv[0] through the shell for -merge and -fork: make it the whole command line
    me = f"{sys.executable} {Path(__file__).resolve()} {name}"
    # files or directories given: run (or fuzz from) those; otherwise fuzz from the target's corpus in the repo
    argv = [me, *rest] if any(not a.startswith("-") for a in rest) else [me, *rest, str(corpus)]
    atheris.Setup(argv, TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
