"""A remote enumeration overlaps its pages (issue #15 §1): the next Pull reaches the server before the client
parses the page that named its context. Against a real ``openmi serve`` on a loopback port, with the server's
Pull handler wrapped to record (or spoil) what it serves: every item still comes in order, over Basic and over
NTLM's sealed messages; a stop, a cancel or an unreadable page still Releases the enumeration and leaves no
half-read connection in the pool; and the quick read of a page takes only what it is sure of."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import openmi
from openmi import AuthType, DestinationOptions, MIResult
from openmi.cim import requests as rq
from openmi.cim.cancel import CancelToken
from openmi.cim.errors import MIError
from openmi.client import remote
from openmi.protocol import wsman
from tests.wsman_server.conftest import PASSWORD, Running, start

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
COUNT = 23  # pages of 5: the Enumerate's page, then Pulls 1 … 4 (the last one ends the enumeration)
PAGE = 5
WAIT = 5.0  # seconds to wait for what overlapping makes happen at once (only reached when it does not)


class Pulls:
    """Wraps the served service's Pull handler: counts the Pulls the server received, and may spoil one
    page's bytes (they still look like a page at both ends, but the parser refuses them)."""

    def __init__(self, r: Running) -> None:
        self.service = r.server.service
        self._inner = self.service._pull
        self.count = 0
        self.spoil: int | None = None
        self._cond = threading.Condition()
        self.service._pull = self  # the instance's attribute: the service calls self._pull(req, user)

    def __call__(self, req: wsman.PullRequest, user: Any) -> bytes:
        with self._cond:
            self.count += 1
            n = self.count
            self._cond.notify_all()
        data: bytes = self._inner(req, user)
        if n == self.spoil:
            data = data.replace(b"</p:Name>", b"</p:Nom>", 1)  # mismatched tags: not XML any more
        return data

    def wait_for(self, n: int) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.count >= n, WAIT)


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    monkeypatch.setattr(remote, "PULL_AHEAD", True)
    r = start(tmp_path, allow_unencrypted=True)
    with openmi.Application() as app:
        local = app.new_session(server=r.engine)
        for i in range(COUNT):
            local.create(openmi.Instance("Sample_Person", {"Id": i, "Name": f"person {i}"}))
    yield r
    r.server.stop()
    r.engine.close()


def order(r: Running) -> list[int]:
    """The Ids in the order the server enumerates them (its repository's, not numeric)."""
    with openmi.Application() as app:
        return [i["Id"] for i in app.new_session(server=r.engine).enumerate("Sample_Person")]


def options(r: Running, auth: str) -> DestinationOptions:
    if auth == "basic":
        o = DestinationOptions("http", r.http_port, encryption="never", max_elements=PAGE)
        o.add_credentials(AuthType.BASIC, "alice", PASSWORD)
    else:  # NTLM over HTTP: each message sealed, the early Pull's among them
        o = DestinationOptions("http", r.http_port, max_elements=PAGE)
        o.add_credentials(AuthType.NTLM, "alice", PASSWORD)
    return o


def enumeration() -> rq.EnumerateInstances:
    return rq.EnumerateInstances(namespace="root/cimv2", class_name="Sample_Person")


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_the_next_pull_reaches_the_server_before_the_page_is_parsed(served: Running, auth: str) -> None:
    pulls = Pulls(served)
    with openmi.Application() as app:
        s = app.new_session("127.0.0.1", "WINRM", options(served, auth))
        t = s._transport
        parse = t._answer
        early: list[bool] = []

        def answer(req: wsman.Request, status: int, ctype: str | None, data: bytes) -> wsman.Response:
            if isinstance(req, wsman.PullRequest):
                k = len(early) + 1  # this is the answer to Pull k; unless it ends the enumeration …
                # … Pull k + 1 is already on its way: the server sees it before we parse
                early.append(pulls.wait_for(k + 1) if k < COUNT // PAGE else True)
            return parse(req, status, ctype, data)

        t._answer = answer  # type: ignore[method-assign]
        got = [i["Id"] for i in t.execute(enumeration(), CancelToken())]
        assert got == order(served)
        assert early == [True] * (COUNT // PAGE)
        assert pulls.count == COUNT // PAGE  # no Pull more than the enumeration needs
        assert len(served.server.service.enumerations) == 0
        # the connection that carried the early Pulls went back whole: the next operation uses it
        assert [i["Id"] for i in s.enumerate("Sample_Person")] == order(served)


def test_a_single_page_sends_no_pull(served: Running) -> None:
    pulls = Pulls(served)
    with openmi.Application() as app:
        o = options(served, "basic")
        o.max_elements = 100
        s = app.new_session("127.0.0.1", "WINRM", o)
        assert len(s.enumerate("Sample_Person")) == COUNT  # one page, ended: no Pull at all
        assert pulls.count == 0


def _idle_whole(t: Any) -> bool:
    return all(c.sock is not None and not c.pending for c in t._idle)


def _only_pooled(r: Running, t: Any) -> bool:
    """Every connection the server still holds is one in the client's pool (none left aside, e.g. an early
    Pull's never read). The server notices a closed connection a moment later: wait for it."""
    deadline = time.monotonic() + WAIT
    while r.server.http.connection_counts()[0] != len(t._idle):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return _idle_whole(t)


def test_close_mid_enumeration_releases_and_keeps_the_connection(served: Running) -> None:
    pulls = Pulls(served)
    with openmi.Application() as app:
        s = app.new_session("127.0.0.1", "WINRM", options(served, "basic"))
        t = s._transport
        it = t.execute(enumeration(), CancelToken())
        got = [next(it)["Id"] for _ in range(2 * PAGE + 1)]  # into the answer to Pull 2: Pull 3 went early
        assert got == order(served)[:2 * PAGE + 1]
        assert pulls.wait_for(3)
        assert len(served.server.service.enumerations) == 1
        it.close()  # type: ignore[attr-defined]
        assert len(served.server.service.enumerations) == 0  # Released, after Pull 3's answer was read
        assert pulls.count == 3
        assert t._idle and _only_pooled(served, t)  # the early Pull's connection is back, whole
        sockets = {id(c.sock) for c in t._idle}
        assert [i["Id"] for i in s.enumerate("Sample_Person")] == order(served)
        assert {id(c.sock) for c in t._idle} == sockets  # and serves the next operation: nothing redialled


def test_cancel_mid_enumeration_sends_no_more_pulls_and_releases(served: Running) -> None:
    pulls = Pulls(served)
    with openmi.Application() as app:
        s = app.new_session("127.0.0.1", "WINRM", options(served, "basic"))
        t = s._transport
        ctx = CancelToken()
        it = t.execute(enumeration(), ctx)
        for _ in range(PAGE + 1):  # into the answer to Pull 1: Pull 2 went early
            next(it)
        assert pulls.wait_for(2)
        ctx.cancel()  # cuts the connection the early Pull waits on
        with pytest.raises(MIError) as err:
            for _ in it:
                pass
        assert err.value.result == MIResult.FAILED and "cancelled" in str(err.value)
        assert pulls.count == 2  # nothing sent after the cancel
        assert len(served.server.service.enumerations) == 0
        assert _only_pooled(served, t)  # the cut connection was dropped, not pooled
        assert len(s.enumerate("Sample_Person")) == COUNT


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_a_page_that_cannot_be_parsed_fails_with_its_error_and_releases(
        served: Running, auth: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pulls = Pulls(served)
    outcomes = []
    for ahead in (False, True):  # the same items and the same MI error as without overlapping
        monkeypatch.setattr(remote, "PULL_AHEAD", ahead)
        pulls.count = 0
        pulls.spoil = 2  # its bytes look like a page (context, no end): Pull 3 goes before the parser refuses it
        with openmi.Application() as app:
            s = app.new_session("127.0.0.1", "WINRM", options(served, auth))
            t = s._transport
            with s.enumerate_instances("root/cimv2", "Sample_Person") as op:
                ids = []
                while (r := op.get_instance()).more_results:
                    assert r.instance is not None
                    ids.append(r.instance["Id"])
            assert ids == order(served)[:2 * PAGE]  # the pages before the spoilt one, in order
            assert r.result != MIResult.OK
            outcomes.append((r.result, r.error_message))
            assert pulls.count == (3 if ahead else 2)
            assert len(served.server.service.enumerations) == 0  # Released
            assert _only_pooled(served, t)
            pulls.spoil = None
            assert len(s.enumerate("Sample_Person")) == COUNT
    assert outcomes[0] == outcomes[1]


# --- the quick read of a page's bytes ----------------------------------------------------------------


def _page(head: str, tail: str, items: str = "<p:X><p:A>1</p:A></p:X>") -> bytes:
    return (f'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
            f'xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration"><s:Header><a:Action>x</a:Action>'
            f'</s:Header><s:Body>{head}<n:Items>{items}</n:Items>{tail}</s:Body></s:Envelope>').encode()


@pytest.mark.parametrize(("data", "context"), [
    (_page("<n:PullResponse><n:EnumerationContext> uuid:A </n:EnumerationContext>", "</n:PullResponse>"), "uuid:A"),
    # the end of the enumeration, or no context: nothing to send
    (_page("<n:PullResponse><n:EnumerationContext>uuid:A</n:EnumerationContext>",
           "<n:EndOfSequence/></n:PullResponse>"), None),
    (_page("<n:PullResponse>", "</n:PullResponse>"), None),
    (_page("<n:PullResponse><n:EnumerationContext></n:EnumerationContext>", "</n:PullResponse>"), None),
    # doubt: an entity or an element in the context, something after the envelope, the wrong response
    (_page("<n:PullResponse><n:EnumerationContext>a&amp;b</n:EnumerationContext>", "</n:PullResponse>"), None),
    (_page("<n:PullResponse><n:EnumerationContext><x/></n:EnumerationContext>", "</n:PullResponse>"), None),
    (_page("<n:PullResponse><n:EnumerationContext>uuid:A</n:EnumerationContext>", "</n:PullResponse>")
     + b"<!-- -->", None),
    (_page("<n:EnumerateResponse><n:EnumerationContext>uuid:A</n:EnumerationContext>",
           "</n:EnumerateResponse>"), None),
    # an item's own EnumerationContext or EndOfSequence property is not the page's
    (_page("<n:PullResponse>", "</n:PullResponse>",
           "<p:X><p:EnumerationContext>uuid:B</p:EnumerationContext></p:X>"), None),
    (_page("<n:PullResponse><n:EnumerationContext>uuid:A</n:EnumerationContext>", "</n:PullResponse>",
           "<p:X><p:EndOfSequence/></p:X>"), "uuid:A"),
])
def test_peek_takes_only_what_it_is_sure_of(data: bytes, context: str | None) -> None:
    assert remote._peek_page(data, True) == context
    assert remote._peek_page(data.decode().encode("utf-16"), True) is None


@pytest.mark.parametrize(("name", "pull", "context"), [
    ("winrm-spec/16-pull-response", True, "uuid:C38F92F6-2FAF-560C-BF2B-CDCCB86F0A31"),
    ("winrm-spec/17-pull-response", True, None),  # EndOfSequence
    ("winrm-spec/15-enumerate-response", False, "uuid:BF79D353-84FD-5F6C-A2D5-C05A6A021FEF"),
    ("winrm-spec/38-associators-response", False, "uuid:38A0C3D1-0000-4000-8000-0000000000C1"),
    ("omi/pyclient-13-pull-omi_identify-response", True, None),  # OMI names the context with its end
    ("winrm-spec/07-get-invalid-class-response", True, None),  # a fault
])
def test_peek_reads_recorded_peers(name: str, pull: bool, context: str | None) -> None:
    data = (FIXTURES / f"{name}.xml").read_bytes()
    assert remote._peek_page(data, pull) == context
    assert remote._peek_page(data, not pull) is None


# --- the same on an event loop (execute_async: asyncio streams) ------------------------------------------------


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_on_an_event_loop_the_next_pull_reaches_the_server_before_the_page_is_parsed(
        served: Running, auth: str) -> None:
    import asyncio

    pulls = Pulls(served)
    with openmi.Application() as app:
        s = app.new_session("127.0.0.1", "WINRM", options(served, auth))
        t = s._transport
        parse = t._answer
        early: list[bool] = []

        def answer(req: wsman.Request, status: int, ctype: str | None, data: bytes) -> wsman.Response:
            if isinstance(req, wsman.PullRequest):
                k = len(early) + 1
                early.append(pulls.wait_for(k + 1) if k < COUNT // PAGE else True)
            return parse(req, status, ctype, data)

        t._answer = answer  # type: ignore[method-assign]

        async def run() -> list[int]:
            return [i["Id"] async for i in t.execute_async(enumeration(), CancelToken())]

        assert asyncio.run(run()) == order(served)
        assert early == [True] * (COUNT // PAGE)
        assert pulls.count == COUNT // PAGE
        assert len(served.server.service.enumerations) == 0


def test_on_an_event_loop_close_and_cancel_release_and_send_nothing_more(served: Running) -> None:
    import asyncio

    pulls = Pulls(served)
    with openmi.Application() as app:
        s = app.new_session("127.0.0.1", "WINRM", options(served, "basic"))
        t = s._transport

        async def close_early() -> list[int]:
            it = t.execute_async(enumeration(), CancelToken())
            got = [(await it.__anext__())["Id"] for _ in range(2 * PAGE + 1)]  # Pull 3 went early
            assert pulls.wait_for(3)
            await it.aclose()  # type: ignore[attr-defined]
            return got

        assert asyncio.run(close_early()) == order(served)[:2 * PAGE + 1]
        assert pulls.count == 3
        assert len(served.server.service.enumerations) == 0  # Released after the early Pull's answer was read

        pulls.count = 0
        ctx = CancelToken()

        async def cancel_early() -> MIError:
            it = t.execute_async(enumeration(), ctx)
            for _ in range(PAGE + 1):  # into the answer to Pull 1: Pull 2 went early
                await it.__anext__()
            assert pulls.wait_for(2)
            ctx.cancel()
            with pytest.raises(MIError) as err:
                async for _ in it:
                    pass
            return err.value

        err = asyncio.run(cancel_early())
        assert err.result == MIResult.FAILED
        assert pulls.count == 2  # nothing sent after the cancel
        assert len(served.server.service.enumerations) == 0
