"""MI_Session_DeleteInstance, as mi.h and the seed specify it: one test per rule."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import openmi
from openmi import MIResult, MIType
from tests.conftest import person, person_class


def _delete(session: openmi.Session, ns: str | None, inst: Any, **kw: Any) -> openmi.InstanceResult:
    with session.delete_instance(ns, inst, **kw) as op:
        return op.get_instance()


def test_success_then_not_found(app: openmi.Application, session: openmi.Session) -> None:
    session.create(person(app, 7, "Ada"))
    op = session.delete_instance("root/cimv2", person(app, 7))
    r = op.get_instance()
    assert r == (None, False, MIResult.OK, None, None)
    assert op.get_instance() == r  # the final result repeats
    assert op.more_results is False
    op.close()
    r2 = _delete(session, "root/cimv2", person(app, 7))
    assert r2.result == MIResult.NOT_FOUND
    assert r2.instance is None and r2.more_results is False
    assert "Sample_Person" in r2.error_message and "Id=7" in r2.error_message and "root/cimv2" in r2.error_message
    d = r2.error_details
    assert d is not None and d.class_name == "OpenMI_Error"
    assert d["CIMStatusCode"] == 6
    assert d["Message"] == r2.error_message
    assert d["MessageID"]


def test_error_details_is_a_cim_error_subclass(app: openmi.Application, session: openmi.Session) -> None:
    r = _delete(session, None, person(app, 99))
    d = r.error_details
    assert d is not None
    for name in ("CIMStatusCode", "Message", "MessageID", "OwningEntity", "PerceivedSeverity", "ErrorType"):
        assert name in d
    assert d.get_element("CIMStatusCode").type == MIType.UINT32


def test_nonzero_flags_fail_in_the_operation_not_the_call(app: openmi.Application, session: openmi.Session) -> None:
    session.create(person(app, 1))
    op = session.delete_instance("root/cimv2", person(app, 1), flags=0x80)  # no exception here
    r = op.get_instance()
    op.close()
    assert r.result == MIResult.INVALID_PARAMETER
    assert "flags" in r.error_message
    assert len(session.enumerate("Sample_Person")) == 1  # nothing was deleted


def test_namespace_none_is_the_default(app: openmi.Application, session: openmi.Session) -> None:
    session.create(person(app, 2))
    assert _delete(session, None, person(app, 2)).result == MIResult.OK


@pytest.mark.parametrize("ns", ["//host/root/cimv2", "\\\\host\\root\\cimv2", "root//cimv2", "root/", "/root",
                                "root/cim v2", "root/ci$mv2", "root/cimv2\x00"])
def test_bad_namespace_is_invalid_parameter(app: openmi.Application, session: openmi.Session, ns: str) -> None:
    r = _delete(session, ns, person(app, 1))
    assert r.result == MIResult.INVALID_PARAMETER, ns
    assert "namespace" in r.error_message


def test_backslash_namespace_is_accepted(app: openmi.Application, session: openmi.Session) -> None:
    session.create(person(app, 3))
    assert _delete(session, "root\\cimv2", person(app, 3)).result == MIResult.OK


def test_unknown_namespace(app: openmi.Application, session: openmi.Session) -> None:
    r = _delete(session, "root/nowhere", person(app, 1))
    assert r.result == MIResult.INVALID_NAMESPACE
    assert "root/nowhere" in r.error_message


def test_instance_none(session: openmi.Session) -> None:
    r = _delete(session, "root/cimv2", None)
    assert r.result == MIResult.INVALID_PARAMETER
    assert "instance" in r.error_message


def test_unknown_class(app: openmi.Application, session: openmi.Session) -> None:
    inst = app.new_instance("No_Such_Class")
    inst.add_element("Id", 1, MIType.UINT32, openmi.MIFlag.KEY)
    r = _delete(session, "root/cimv2", inst)
    assert r.result == MIResult.INVALID_CLASS
    assert "No_Such_Class" in r.error_message


def test_missing_key(app: openmi.Application, session: openmi.Session) -> None:
    inst = app.new_instance("Sample_Person")
    inst["Name"] = "Ada"
    r = _delete(session, "root/cimv2", inst)
    assert r.result == MIResult.INVALID_PARAMETER
    assert "Id" in r.error_message


def test_property_the_class_lacks(app: openmi.Application, session: openmi.Session) -> None:
    inst = person(app, 1)
    inst["Shoe"] = 42
    r = _delete(session, "root/cimv2", inst)
    assert r.result == MIResult.NO_SUCH_PROPERTY
    assert "Shoe" in r.error_message


@pytest.mark.parametrize("value,mitype", [("seven", MIType.STRING), (True, MIType.BOOLEAN), (1.5, MIType.REAL64),
                                          (-1, MIType.SINT32), (2**40, MIType.UINT64)])
def test_key_of_wrong_type(app: openmi.Application, session: openmi.Session, value: Any, mitype: MIType) -> None:
    inst = app.new_instance("Sample_Person")
    inst.add_element("Id", value, mitype, openmi.MIFlag.KEY)
    r = _delete(session, "root/cimv2", inst)
    assert r.result == MIResult.TYPE_MISMATCH
    assert "Id" in r.error_message and "UINT32" in r.error_message


def test_key_given_as_text_or_other_integer_type_is_converted(app: openmi.Application,
                                                              session: openmi.Session) -> None:
    session.create(person(app, 5))
    session.create(person(app, 6))
    text = app.new_instance("Sample_Person")
    text.add_element("Id", "5", MIType.STRING, openmi.MIFlag.KEY)  # omicli sends text
    assert _delete(session, None, text).result == MIResult.OK
    small = app.new_instance("Sample_Person")
    small.add_element("Id", 6, MIType.UINT8, openmi.MIFlag.KEY)
    assert _delete(session, None, small).result == MIResult.OK


def test_provider_without_delete_is_not_supported(app: openmi.Application, session: openmi.Session,
                                                  server: openmi.Server) -> None:
    class ReadOnly:
        def enumerate_instances(self, ctx: Any, ns: str, cls: str, keys_only: bool) -> list[openmi.Instance]:
            return []

    server.register_provider("root/cimv2", "Sample_Person", ReadOnly())
    r = _delete(session, None, person(app, 1))
    assert r.result == MIResult.NOT_SUPPORTED
    assert "delete_instance" in r.error_message


def test_provider_delete_gets_typed_keys_and_can_fail(app: openmi.Application, session: openmi.Session,
                                                      server: openmi.Server) -> None:
    seen: list[tuple[str, openmi.Instance]] = []

    class Provider:
        def delete_instance(self, ctx: openmi.Context, namespace: str, instance: openmi.Instance) -> None:
            seen.append((namespace, instance))
            if instance["Id"] == 13:
                raise openmi.MIError(MIResult.ACCESS_DENIED, "13 is protected")

    server.register_provider("root/cimv2", "Sample_Person", Provider())
    text = app.new_instance("Sample_Person")
    text.add_element("Id", "12", MIType.STRING, openmi.MIFlag.KEY)
    assert _delete(session, None, text).result == MIResult.OK
    assert seen[0][0] == "root/cimv2"
    assert seen[0][1].get_element("Id").type == MIType.UINT32 and seen[0][1]["Id"] == 12
    r = _delete(session, None, person(app, 13))
    assert r.result == MIResult.ACCESS_DENIED and r.error_message == "13 is protected"
    assert r.error_details is not None and r.error_details["CIMStatusCode"] == 2


def test_provider_bug_is_failed_not_a_crash(app: openmi.Application, session: openmi.Session,
                                            server: openmi.Server) -> None:
    class Buggy:
        def delete_instance(self, ctx: Any, ns: str, inst: openmi.Instance) -> None:
            raise ZeroDivisionError("oops")

    server.register_provider("root/cimv2", "Sample_Person", Buggy())
    r = _delete(session, None, person(app, 1))
    assert r.result == MIResult.FAILED
    assert "ZeroDivisionError" in r.error_message


def test_callbacks_make_it_asynchronous_and_fire_once(app: openmi.Application, session: openmi.Session,
                                                      server: openmi.Server) -> None:
    session.create(person(app, 8))
    calls: list[tuple[Any, ...]] = []
    messages: list[tuple[Any, ...]] = []
    progress: list[tuple[Any, ...]] = []
    prompts: list[str] = []
    errors: list[openmi.Instance] = []
    done = threading.Event()

    class Chatty:
        def delete_instance(self, ctx: openmi.Context, ns: str, inst: openmi.Instance) -> None:
            ctx.write_message(openmi.WriteMessageChannel.VERBOSE, "deleting 8")
            ctx.write_progress("Delete", "person 8", "working", 50, 1)
            assert ctx.write_error(MIResult.FAILED, "a soft error") is True
            if not ctx.should_process("Sample_Person.Id=8", "Delete"):
                raise openmi.MIError(MIResult.FAILED, "user said no")

    server.register_provider("root/cimv2", "Sample_Person", Chatty())

    def on_result(op: openmi.Operation, ctx: Any, inst: Any, more: bool, result: MIResult, msg: Any,
                  details: Any) -> None:
        calls.append((ctx, inst, more, result, msg, details))
        done.set()

    cbs = openmi.OperationCallbacks(
        instance_result=on_result,
        write_message=lambda op, ctx, ch, m: messages.append((ctx, ch, m)),
        write_progress=lambda op, ctx, *a: progress.append(a),
        write_error=lambda op, ctx, err: errors.append(err) or openmi.ResponseType.YES,
        prompt_user=lambda op, ctx, m, t: prompts.append(m) or openmi.ResponseType.YES,
        context="my-context",
    )
    op = session.delete_instance("root/cimv2", person(app, 8), callbacks=cbs)
    assert done.wait(5)
    op.close()
    op._join(5)
    assert calls == [("my-context", None, False, MIResult.OK, None, None)]
    assert messages == [("my-context", 1, "deleting 8")]
    assert progress == [("Delete", "person 8", "working", 50, 1)]
    assert errors and errors[0]["Message"] == "a soft error"
    assert prompts and "Sample_Person.Id=8" in prompts[0]
    with pytest.raises(openmi.MIError) as ei:
        op.get_instance()  # results went to the callback
    assert ei.value.result == MIResult.INVALID_PARAMETER


def test_prompt_answered_no_stops_the_provider(app: openmi.Application, session: openmi.Session,
                                               server: openmi.Server) -> None:
    class Careful:
        def delete_instance(self, ctx: openmi.Context, ns: str, inst: openmi.Instance) -> None:
            if not ctx.should_process("Sample_Person.Id=1", "Delete"):
                raise openmi.MIError(MIResult.FAILED, "not confirmed")

    server.register_provider("root/cimv2", "Sample_Person", Careful())
    cbs = openmi.OperationCallbacks(prompt_user=lambda op, ctx, m, t: openmi.ResponseType.NO)
    r = _delete(session, None, person(app, 1), callbacks=cbs)  # sync: no instance_result callback
    assert r.result == MIResult.FAILED and r.error_message == "not confirmed"


def test_callback_failure_is_delivered_once(app: openmi.Application, session: openmi.Session) -> None:
    got: list[MIResult] = []
    done = threading.Event()

    def cb(op: Any, ctx: Any, inst: Any, more: bool, result: MIResult, msg: Any, det: Any) -> None:
        got.append(result)
        done.set()

    op = session.delete_instance("root/nowhere", person(app, 1),
                                 callbacks=openmi.OperationCallbacks(instance_result=cb))
    assert done.wait(5)
    op.close()
    op._join(5)
    assert got == [MIResult.INVALID_NAMESPACE]


class _Blocking:
    """A provider whose delete waits until it is cancelled (and says how it ended)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.saw_cancel = threading.Event()
        self.reasons: list[openmi.CancellationReason] = []

    def delete_instance(self, ctx: openmi.Context, ns: str, inst: openmi.Instance) -> None:
        ctx.register_cancel(self.reasons.append)
        self.started.set()
        deadline = time.monotonic() + 10
        while not ctx.cancelled and time.monotonic() < deadline:
            time.sleep(0.005)
        if ctx.cancelled:
            self.saw_cancel.set()


def test_cancel_ends_with_failed_and_tells_the_provider(app: openmi.Application, session: openmi.Session,
                                                        server: openmi.Server) -> None:
    prov = _Blocking()
    server.register_provider("root/cimv2", "Sample_Person", prov)
    op = session.delete_instance(None, person(app, 1))
    results: list[openmi.InstanceResult] = []
    t = threading.Thread(target=lambda: results.append(op.get_instance()))
    t.start()
    assert prov.started.wait(5)
    op.cancel(openmi.CancellationReason.SHUTDOWN)
    t.join(5)
    assert not t.is_alive()
    assert prov.saw_cancel.is_set()
    assert prov.reasons == [openmi.CancellationReason.SHUTDOWN]
    assert results[0].result == MIResult.FAILED and "cancel" in results[0].error_message
    op.close()


def test_cancel_before_reading(app: openmi.Application, session: openmi.Session, server: openmi.Server) -> None:
    # the call itself deleted from the repository (an operation runs when started): cancel comes too late
    session.create(person(app, 4))
    op = session.delete_instance(None, person(app, 4))
    op.cancel()
    assert op.get_instance().result == MIResult.OK
    op.close()
    assert session.enumerate("Sample_Person") == []
    # a provider's delete is running though nobody reads: it sees the cancel
    prov = _Blocking()
    server.register_provider("root/cimv2", "Sample_Person", prov)
    op = session.delete_instance(None, person(app, 4))
    assert prov.started.wait(5)
    op.cancel()
    assert prov.saw_cancel.wait(5)
    r = op.get_instance()
    assert r.result == MIResult.FAILED and "cancel" in (r.error_message or "")
    op.close()


def test_timeout_ends_with_failed_and_a_timeout_message(app: openmi.Application, session: openmi.Session,
                                                        server: openmi.Server) -> None:
    prov = _Blocking()
    server.register_provider("root/cimv2", "Sample_Person", prov)
    opts = openmi.OperationOptions(timeout=0.1)
    t0 = time.monotonic()
    r = _delete(session, None, person(app, 1), options=opts)
    assert time.monotonic() - t0 < 5
    assert r.result == MIResult.FAILED and "timed out" in r.error_message
    assert prov.reasons == [openmi.CancellationReason.TIMEOUT]


def test_close_before_reading_never_hangs(app: openmi.Application, session: openmi.Session,
                                          server: openmi.Server) -> None:
    prov = _Blocking()
    server.register_provider("root/cimv2", "Sample_Person", prov)
    op = session.delete_instance(None, person(app, 1))
    t0 = time.monotonic()
    op.close()
    assert time.monotonic() - t0 < 1
    # a reader blocked inside the provider is released by close as well
    op2 = session.delete_instance(None, person(app, 1))
    reader = threading.Thread(target=op2.get_instance, name="openmi-test-reader")
    reader.start()
    assert prov.started.wait(5)
    t0 = time.monotonic()
    op2.close()
    assert time.monotonic() - t0 < 1
    reader.join(5)
    assert not reader.is_alive()


def test_session_close_cancels_open_operations(app: openmi.Application, server: openmi.Server) -> None:
    prov = _Blocking()
    server.register_provider("root/cimv2", "Sample_Person", prov)
    s = app.new_session(server=server)
    finals: list[MIResult] = []
    done = threading.Event()

    def cb(op: Any, ctx: Any, inst: Any, more: bool, result: MIResult, *rest: Any) -> None:
        finals.append(result)
        done.set()

    s.delete_instance(None, person(app, 1), callbacks=openmi.OperationCallbacks(instance_result=cb))
    assert prov.started.wait(5)
    s.close()
    assert done.wait(5)
    assert finals == [MIResult.FAILED]
    assert s.delete_instance(None, person(app, 1)).get_instance().result == MIResult.INVALID_PARAMETER


def test_application_close_closes_sessions(server: openmi.Server) -> None:
    app = openmi.Application()
    s1 = app.new_session(server=server)
    s2 = app.new_session(server=server)
    op = s1.delete_instance(None, person(app, 1))
    app.close()
    assert s1.closed and s2.closed and op.closed


def test_concurrent_deletes_exactly_one_ok(app: openmi.Application, tmp_path: Path) -> None:
    with openmi.Server(tmp_path / "repo.db") as srv:
        srv.define_class("root/cimv2", person_class())
        s = app.new_session(server=srv)
        s.create(person(app, 42, "Grace"))
        barrier = threading.Barrier(8)
        results: list[MIResult] = []
        lock = threading.Lock()

        def worker() -> None:
            sess = app.new_session(server=srv)
            barrier.wait()
            r = _delete(sess, None, person(app, 42))
            with lock:
                results.append(r.result)
            sess.close()

        threads = [threading.Thread(target=worker, name="openmi-test-worker") for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sorted(results) == [MIResult.OK] + [MIResult.NOT_FOUND] * 7


def test_delete_is_durable_before_ok(app: openmi.Application, tmp_path: Path) -> None:
    path = tmp_path / "repo.db"
    with openmi.Server(path) as srv:
        srv.define_class("root/cimv2", person_class())
        s = app.new_session(server=srv)
        for i in range(3):
            s.create(person(app, i))
        assert _delete(s, None, person(app, 1)).result == MIResult.OK
        # another connection sees the committed state at once (WAL, exclusive lock released by close)
    with openmi.Server(path) as srv2:
        s2 = app.new_session(server=srv2)
        assert sorted(i["Id"] for i in s2.enumerate("Sample_Person")) == [0, 2]


def test_delete_of_subclass_instance_through_base_class(app: openmi.Application, server: openmi.Server,
                                                        session: openmi.Session) -> None:
    server.define_class("root/cimv2", openmi.Class("Sample_Employee", "Sample_Person", [
        openmi.Property("Dept", MIType.STRING)]))
    emp = app.new_instance("Sample_Employee")
    emp.add_element("Id", 77, MIType.UINT32, openmi.MIFlag.KEY)
    emp["Dept"] = "R&D"
    session.create(emp)
    assert _delete(session, None, person(app, 77)).result == MIResult.OK
    assert session.enumerate("Sample_Employee") == []


def test_delete_convenience_raises(app: openmi.Application, session: openmi.Session) -> None:
    session.create(person(app, 9))
    session.delete(person(app, 9), namespace="root/cimv2")
    with pytest.raises(openmi.MIError) as ei:
        session.delete(person(app, 9))
    assert ei.value.result == MIResult.NOT_FOUND
    assert ei.value.details is not None and ei.value.details["CIMStatusCode"] == 6


def test_delete_with_asyncio(app: openmi.Application, session: openmi.Session) -> None:
    import asyncio

    session.create(person(app, 10))

    async def main() -> tuple[Any, openmi.InstanceResult]:
        first = await session.delete_instance(None, person(app, 10))
        with session.delete_instance(None, person(app, 10)) as op:
            second = await op.get_instance_async()
        return first, second

    first, second = asyncio.run(main())
    assert first is None
    assert second.result == MIResult.NOT_FOUND


@pytest.mark.parametrize("flags", [0x2, 0x80, -1, "0"])
def test_nonzero_flags_with_callbacks_delete_nothing(app: openmi.Application, session: openmi.Session,
                                                    flags: Any) -> None:
    session.create(person(app, 31))
    got: list[MIResult] = []
    done = threading.Event()

    def cb(op: Any, ctx: Any, inst: Any, more: bool, result: MIResult, *rest: Any) -> None:
        got.append(result)
        done.set()

    op = session.delete_instance(None, person(app, 31), flags=flags,
                                 callbacks=openmi.OperationCallbacks(instance_result=cb))
    assert done.wait(5)
    op.close()
    op._join(5)
    assert got == [MIResult.INVALID_PARAMETER]
    assert len(session.enumerate("Sample_Person")) == 1
    with session.test_connection(flags=5, callbacks=openmi.OperationCallbacks(instance_result=cb)) as op2:
        pass
    op2._join(5)
    assert got[-1] == MIResult.INVALID_PARAMETER


def test_operation_started_on_a_closed_session(app: openmi.Application, server: openmi.Server) -> None:
    s = app.new_session(server=server)
    s.close()
    with s.delete_instance(None, person(app, 1)) as op:
        r = op.get_instance()
    assert r.result == MIResult.INVALID_PARAMETER and "closed" in (r.error_message or "")
