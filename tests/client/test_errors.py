"""Errors keep their cause and nothing is swallowed (issue 9 §3): a provider's exception is chained to
what every reader sees and logged by the engine; a callback that raises is logged and fails the
operation; misuse raises the documented kind of error."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import openmi
from openmi import MIResult
from tests.conftest import person

WAIT = 20.0


class Broken:
    """A provider with a bug: every call raises KeyError."""

    def get_instance(self, ctx: openmi.Context, ns: str, inst: openmi.Instance) -> openmi.Instance:
        raise KeyError("missing-thing")

    def enumerate_instances(self, ctx: openmi.Context, ns: str, cls: str, keys_only: bool) -> Iterator[Any]:
        yield openmi.Instance("Sample_Person", {"Id": 1})
        raise KeyError("missing-thing")


@pytest.fixture
def broken(server: openmi.Server) -> Broken:
    prov = Broken()
    server.register_provider("root/cimv2", "Sample_Person", prov)
    return prov


def _is_key_error(exc: BaseException | None) -> bool:
    return isinstance(exc, KeyError) and exc.args == ("missing-thing",)


def test_the_cause_reaches_the_synchronous_reader(app: openmi.Application, session: openmi.Session,
                                                  broken: Broken, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="openmi"):
        with session.get_instance(None, person(app, 1)) as op:
            r = op.get_instance()
            assert r.result == MIResult.FAILED and "KeyError" in (r.error_message or "")
            assert op.error is not None and _is_key_error(op.error.__cause__)
        with pytest.raises(openmi.MIError) as ei:
            session.get(person(app, 1))
        assert ei.value.result == MIResult.FAILED and _is_key_error(ei.value.__cause__)
        with pytest.raises(openmi.MIError) as ei2, session.enumerate_instances(None, "Sample_Person") as op2:
            list(op2)
        assert _is_key_error(ei2.value.__cause__)
    # the engine logged each failure once, with the provider's traceback
    engine = [r for r in caplog.records if r.name == "openmi.engine"]
    assert len(engine) == 3
    assert all(r.exc_info is not None and _is_key_error(r.exc_info[1]) for r in engine)


def test_the_cause_reaches_callbacks(app: openmi.Application, session: openmi.Session, broken: Broken) -> None:
    seen: list[tuple[MIResult, BaseException | None]] = []
    done = threading.Event()

    def cb(op: openmi.Operation, ctx: Any, inst: Any, more: bool, result: MIResult, *rest: Any) -> None:
        if not more:
            seen.append((result, op.error.__cause__ if op.error is not None else None))
            done.set()

    with session.get_instance(None, person(app, 1), callbacks=openmi.OperationCallbacks(instance_result=cb)):
        assert done.wait(WAIT)
    assert seen[0][0] == MIResult.FAILED and _is_key_error(seen[0][1])


def test_the_cause_reaches_asyncio(app: openmi.Application, session: openmi.Session, broken: Broken) -> None:
    async def main() -> tuple[BaseException, BaseException]:
        with pytest.raises(openmi.MIError) as single:
            await session.get_instance(None, person(app, 1))
        with pytest.raises(openmi.MIError) as many:
            async for _ in session.enumerate_instances(None, "Sample_Person"):
                pass
        return single.value, many.value

    single, many = asyncio.run(main())
    assert _is_key_error(single.__cause__) and _is_key_error(many.__cause__)


class Waiting:
    """Enumerates one instance, then waits for cancellation (reporting progress on the way)."""

    def __init__(self) -> None:
        self.saw_cancel = threading.Event()

    def enumerate_instances(self, ctx: openmi.Context, ns: str, cls: str, keys_only: bool) -> Iterator[Any]:
        yield openmi.Instance("Sample_Person", {"Id": 1})
        ctx.write_message(0, "between results")
        ctx.write_progress("enumerating", percent_complete=50)
        if not ctx.should_process("Sample_Person", "Enumerate"):
            raise openmi.MIError(MIResult.FAILED, "not confirmed")
        ctx.write_error(MIResult.FAILED, "a soft error")
        while not ctx.cancelled:
            threading.Event().wait(0.002)
        self.saw_cancel.set()


def _raiser(name: str) -> Any:
    def cb(*args: Any) -> Any:
        raise ZeroDivisionError(f"{name} broke")
    return cb


@pytest.mark.parametrize("which", ["instance_result", "write_message", "write_progress", "prompt_user",
                                   "write_error"])
def test_a_raising_callback_cancels_the_operation(app: openmi.Application, session: openmi.Session,
                                                  server: openmi.Server, caplog: pytest.LogCaptureFixture,
                                                  which: str) -> None:
    prov = Waiting()
    server.register_provider("root/cimv2", "Sample_Person", prov)
    finals: list[tuple[MIResult, str | None, BaseException | None]] = []
    done = threading.Event()

    def on_result(op: openmi.Operation, ctx: Any, inst: Any, more: bool, result: MIResult, msg: Any,
                  details: Any) -> None:
        if which == "instance_result" and more:
            raise ZeroDivisionError("instance_result broke")
        if not more:
            finals.append((result, msg, op.error.__cause__ if op.error is not None else None))
            done.set()

    cbs = openmi.OperationCallbacks(instance_result=on_result)
    if which != "instance_result":
        setattr(cbs, which, _raiser(which))
    with caplog.at_level(logging.ERROR, logger="openmi"):
        op = session.enumerate_instances(None, "Sample_Person", callbacks=cbs)
        assert done.wait(WAIT)
        op.close()
    assert prov.saw_cancel.is_set() or which == "prompt_user"  # a prompt that raised counts as "no"
    assert len(finals) == 1
    result, msg, cause = finals[0]
    assert result == MIResult.FAILED and f"the {which} callback raised ZeroDivisionError" in (msg or "")
    assert isinstance(cause, ZeroDivisionError)
    logged = [r for r in caplog.records if r.name == "openmi.client" and which in r.getMessage()]
    assert logged and logged[0].exc_info is not None and isinstance(logged[0].exc_info[1], ZeroDivisionError)


def test_a_raising_final_callback_is_logged(app: openmi.Application, session: openmi.Session,
                                            caplog: pytest.LogCaptureFixture) -> None:
    done = threading.Event()

    def cb(*args: Any) -> None:
        done.set()
        raise ZeroDivisionError("final broke")

    with caplog.at_level(logging.ERROR, logger="openmi"):
        op = session.test_connection(callbacks=openmi.OperationCallbacks(instance_result=cb))
        assert done.wait(WAIT)
        assert op._wait_settled(WAIT)
        op.close()
    assert any(r.name == "openmi.client" and r.exc_info is not None for r in caplog.records)


def test_misuse_raises_the_documented_errors(app: openmi.Application, session: openmi.Session) -> None:
    with pytest.raises(TypeError):
        app.new_session(server="not a server")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        openmi.Application(max_threads=-1)
    # anything about the request itself is the operation's result, never an exception from the call
    with session.get_instance(None, person(app, 1), options="fast") as op:  # type: ignore[arg-type]
        assert op.get_instance().result == MIResult.INVALID_PARAMETER
    with session.enumerate_instances("root/nowhere", "Sample_Person", flags=1 << 20) as op:
        assert op.get_instance().result == MIResult.INVALID_PARAMETER
    # reading the wrong way: MIError(INVALID_PARAMETER), as OMI's Get call answers
    with session.get_class(None, "Sample_Person") as op, pytest.raises(openmi.MIError) as ei:
        op.get_instance()
    assert ei.value.result == MIResult.INVALID_PARAMETER
