"""Property tests over what clients send: a fault or a result, never an unexpected exception.

The suite runs a short pass (the ``security`` profile); ``make fuzz`` runs the same properties long
(``HYPOTHESIS_PROFILE=fuzz``), with the database kept in tests/fuzz/hypothesis so failures come back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import openmi
from openmi import MIType
from openmi.cim.errors import MOFError
from openmi.cim.mof import compiler as mof_compiler
from openmi.cim.mof.brace import BraceError, parse_brace
from openmi.cim.objectpath import parse_object_path
from openmi.cim.values import parse_datetime
from openmi.protocol import wsman
from openmi.protocol.wsman.values import WireError, parse_duration, parse_wire_datetime, parse_wire_scalar
from openmi.wsman_server.http import HTTPRequest
from openmi.wsman_server.service import WSManConnection, WSManService
from tests.wsman_server.conftest import sample_engine

from .strategies import (
    brace_argvs,
    brace_texts,
    datetime_texts,
    envelopes,
    mof_texts,
    mutated,
    object_paths,
    text_values,
)

SOAP = "application/soap+xml;charset=UTF-8"
SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]


@given(envelopes())
@settings(suppress_health_check=SLOW)
def test_parse_request_gives_a_request_or_a_fault(body: bytes) -> None:
    try:
        req = wsman.parse_request(body, SOAP)
    except wsman.WSManFault as fault:
        assert fault.fault.subcode is not None and fault.fault.reason
        _, data = wsman.build_fault(None, fault)  # and the fault can be written, in the request's encoding
        assert b"Fault" in data or "Fault".encode("utf-16-le") in data
        return
    assert isinstance(req, wsman.Request)


@given(st.binary(max_size=300), st.sampled_from([SOAP, "application/soap+xml;charset=UTF-16", None, "text/x"]))
@settings(suppress_health_check=SLOW)
def test_parse_request_of_any_bytes(body: bytes, ctype: str | None) -> None:
    try:
        wsman.parse_request(body, ctype)
    except wsman.WSManFault:
        pass


@pytest.fixture(scope="module")
def connection() -> Iterator[WSManConnection]:
    engine, _ = sample_engine()
    engine.define_class("root/cimv2", openmi.Class("Sample_Named", properties=[
        openmi.Property("Name", MIType.STRING, key=True), openmi.Property("Note", MIType.STRING)]))
    service = WSManService(engine, None)
    yield service.connection("127.0.0.1:1", False)
    service.close()
    engine.close()


@given(envelopes())
@settings(suppress_health_check=SLOW)
def test_the_service_answers_every_envelope_with_a_result_or_a_fault(connection: WSManConnection,
                                                                      body: bytes) -> None:
    response = connection.handle(HTTPRequest("POST", "/wsman", "HTTP/1.1", {"content-type": SOAP}, body))
    assert response.status in (200, 400, 500), response.status
    if response.body:
        ctype = dict(response.headers).get("Content-Type", "")
        assert ctype.startswith("application/soap+xml")
    # the last resort (an exception nobody anticipated) never answers
    assert b"could not process the request (internal error)" not in response.body


@given(mof_texts)
@settings(suppress_health_check=SLOW)
def test_mof_compiles_or_raises_mof_error(text: str) -> None:
    if mof_compiler._looks_like_path(text):
        return  # would be read as a file name
    try:
        result = mof_compiler.compile_mof(text)
    except MOFError as exc:
        assert str(exc)
        return
    assert result is not None


@given(st.one_of(brace_texts, brace_argvs))
@settings(suppress_health_check=SLOW)
def test_brace_instances_parse_or_raise_brace_error(source: str | list[str]) -> None:
    try:
        inst = parse_brace(source)
    except BraceError as exc:
        assert str(exc)
        return
    assert isinstance(inst, openmi.Instance)


@given(object_paths)
@settings(suppress_health_check=SLOW)
def test_object_paths_parse_or_raise_value_error(text: str) -> None:
    try:
        ref = parse_object_path(text)
    except ValueError as exc:
        assert str(exc)
        return
    assert ref is not None


@given(datetime_texts)
@settings(suppress_health_check=SLOW)
def test_datetimes_and_durations_parse_or_raise_value_error(text: str) -> None:
    for parse in (parse_datetime, parse_wire_datetime, parse_duration):
        try:
            value = parse(text)
        except ValueError:
            continue
        assert isinstance(value, (dt.datetime, dt.timedelta))


@given(st.one_of(datetime_texts, text_values), st.sampled_from([t for t in MIType if t < 16 and t not in (
    MIType.REFERENCE, MIType.INSTANCE)]))
@settings(suppress_health_check=SLOW)
def test_wire_scalars_parse_or_raise_wire_error(text: str, mitype: MIType) -> None:
    try:
        parse_wire_scalar(text, mitype, "P")
    except WireError as exc:
        assert str(exc)


@given(st.data())
@settings(suppress_health_check=SLOW)
def test_mutated_envelopes_of_a_real_request(data: st.DataObject) -> None:
    real = wsman.build_request(wsman.GetRequest(resource_uri="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/"
                                                "cimv2/Sample_Person", selectors={"Id": "1"}, operation_timeout=60))
    body = data.draw(mutated(real))
    try:
        wsman.parse_request(body, SOAP)
    except wsman.WSManFault:
        pass


FINDINGS = Path(__file__).resolve().parents[1] / "fuzz" / "findings"


def _replay_response(data: bytes) -> None:
    for expected in (wsman.GetRequest(), wsman.EnumerateRequest(), wsman.PullRequest(context="x")):
        try:
            wsman.parse_response(data, SOAP, expected)
        except openmi.MIError:
            pass


def _replay_datetime(data: bytes) -> None:
    test_datetimes_and_durations_parse_or_raise_value_error.hypothesis.inner_test(  # type: ignore[attr-defined]
        data.decode("utf-8", "replace"))


def _replay_request(data: bytes) -> None:
    try:
        wsman.parse_request(data, SOAP)
    except wsman.WSManFault:
        pass


def _replay_service(data: bytes) -> None:
    engine, _ = sample_engine()
    service = WSManService(engine, None)
    try:
        response = service.connection("127.0.0.1:1", False).handle(
            HTTPRequest("POST", "/wsman", "HTTP/1.1", {"content-type": SOAP}, data))
        assert b"could not process the request (internal error)" not in response.body
    finally:
        service.close()
        engine.close()


def _text_of(data: bytes) -> str:
    return data.decode("utf-8", "replace")


REPLAY = {
    "response": _replay_response, "datetime": _replay_datetime, "request": _replay_request,
    "service": _replay_service,
    "mof": lambda d: test_mof_compiles_or_raises_mof_error.hypothesis.inner_test(_text_of(d)),  # type: ignore
    "brace": lambda d: test_brace_instances_parse_or_raise_brace_error.hypothesis.inner_test(_text_of(d)),  # type: ignore
    "objectpath": lambda d: test_object_paths_parse_or_raise_value_error.hypothesis.inner_test(_text_of(d)),  # type: ignore
}


@pytest.mark.parametrize("finding", sorted(p.name for p in FINDINGS.iterdir()) if FINDINGS.is_dir() else [])
def test_what_the_fuzzers_found_stays_fixed(finding: str) -> None:
    """Each file in tests/fuzz/findings is an input that once escaped its reader (``<target>-<what>``)."""
    REPLAY[finding.split("-", 1)[0]]((FINDINGS / finding).read_bytes())
