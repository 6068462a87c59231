"""The HTTP server's limits against hostile clients (issue 16 items 1 and 9), over real loopback sockets:
malformed Content-Length answered with 400 (never a silent drop), Slowloris — 256 connections trickling
header bytes while a valid client is served — the whole-request and idle deadlines, and the cap per
client address. Limits are made small here; no assertion depends on the machine's speed."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import openmi
from openmi import AuthType, DestinationOptions
from openmi.wsman_server import http

from .conftest import PASSWORD, Running, start
from .test_server import GET, SOAP, basic, envelope, watched

GENEROUS = 30.0  # seconds: only a hang reaches it


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))  # 127.0.0.0/8 is all loopback on Linux: a distinct client address per source
    sock.connect(("127.0.0.1", port))
    return sock


def read_to_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (GENEROUS bounds a hang, not a speed)."""
    sock.settimeout(GENEROUS)
    out = b""
    try:
        while data := sock.recv(65536):
            out += data
    except ConnectionResetError:
        pass
    return out


def valid_request(body: bytes | None = None) -> bytes:
    body = body if body is not None else envelope(GET, "Sample_Watched", watched())
    return (f"POST /wsman HTTP/1.1\r\nHost: x\r\nAuthorization: {basic()}\r\nContent-Type: {SOAP}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def running(tmp_path: Path, **limits: object) -> Running:
    return start(tmp_path, allow_unencrypted=True, **limits)


@pytest.fixture
def served_http(tmp_path: Path) -> Iterator[Running]:
    r = running(tmp_path)
    yield r
    r.server.stop()
    r.engine.close()


# --- issue 16 item 9: every malformed Content-Length is a 400 ------------------------------------------
@pytest.mark.parametrize("value", [
    b"\xb2", b"1\xb9",  # the reported case: '²' as one Latin-1 byte (str.isdigit() said yes, int() no)
    "²".encode(),  # and in UTF-8
    "٣".encode(), "１".encode(),  # Arabic-Indic and full-width digits
    b"+12", b"-12", b"1 2", b"0x10", b"1e3", b"12.0", b"", b"twelve", b"\xff",
    b"12\r\nContent-Length: 13",  # duplicates that disagree
    b"12, 13",
    b"9" * 21, b"9" * 5000,  # more digits than any body, more than int() takes from text
])
def test_malformed_content_length_gets_a_400(served_http: Running, value: bytes) -> None:
    sock = connect(served_http.http_port)
    sock.sendall(b"POST /wsman HTTP/1.1\r\nHost: x\r\nContent-Type: " + SOAP.encode() + b"\r\nContent-Length: "
                 + value + b"\r\n\r\n<s:Envelope/>")
    answer = read_to_close(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer[:200]
    assert b"Connection: close" in answer and b"Content-Length" in answer.split(b"\r\n\r\n", 1)[1]


def test_a_declared_body_over_the_limit_gets_a_413(served_http: Running) -> None:
    sock = connect(served_http.http_port)
    sock.sendall(b"POST /wsman HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n")
    answer = read_to_close(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_pipelined_requests_are_answered_in_order(served_http: Running) -> None:
    sock = connect(served_http.http_port)
    sock.sendall(valid_request() + valid_request() + b"POST /wsman HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 + valid_request()[len(b"POST /wsman HTTP/1.1\r\nHost: x\r\n"):])
    answer = read_to_close(sock)
    sock.close()
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert served_http.recorder.calls == ["get"] * 3


# --- issue 16 item 1: Slowloris ------------------------------------------------------------------------
class Trickler:
    """``count`` connections from a few addresses, each sending one more header byte every round."""

    HEAD = b"POST /wsman HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4096

    def __init__(self, port: int, count: int, sources: list[str]) -> None:
        self.socks: list[tuple[socket.socket, list[int]]] = []
        for i in range(count):
            sock = connect(port, sources[i % len(sources)])
            sock.sendall(self.HEAD[:1])
            self.socks.append((sock, [1]))
        self.stop = threading.Event()
        self.rounds = 0
        self.round_done = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="test-trickler", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            for sock, sent in self.socks:
                if sent[0] < 0:
                    continue
                try:
                    sock.send(self.HEAD[sent[0]:sent[0] + 1])
                    sent[0] += 1
                except OSError:
                    sent[0] = -1  # displaced by the server
            with self.round_done:
                self.rounds += 1
                self.round_done.notify_all()

    def next_round(self) -> None:
        """Wait until one more byte has gone out on every held connection."""
        with self.round_done:
            goal = self.rounds + 1
            assert self.round_done.wait_for(lambda: self.rounds >= goal, GENEROUS)

    def alive(self) -> int:
        return sum(1 for _, sent in self.socks if sent[0] >= 0)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for sock, _ in self.socks:
            sock.close()


def session(app: openmi.Application, port: int) -> openmi.Session:
    o = DestinationOptions("http", port, encryption="never")
    o.add_credentials(AuthType.BASIC, "alice", PASSWORD)
    return app.new_session("127.0.0.1", "WINRM", o)


def test_slowloris_does_not_starve_a_valid_client(tmp_path: Path) -> None:
    request_timeout = 60.0  # the slow connections are not timed out during the test: they stay held
    r = running(tmp_path, max_connections=48, reserved_connections=8, max_connections_per_address=1000,
                request_timeout=request_timeout, idle_timeout=request_timeout)
    app = openmi.Application()
    slow: Trickler | None = None
    try:
        kept = session(app, r.http_port)  # authenticated before the attack, on a kept-alive connection
        assert len(kept.enumerate("Sample_Person")) == 0
        slow = Trickler(r.http_port, 256, [f"127.0.0.{n}" for n in range(2, 10)])
        anonymous_cap = 48 - 8
        held_since = time.monotonic()
        while time.monotonic() - held_since <= http.FRESH_GRACE:  # until the held ones may be displaced
            slow.next_round()
        for i in range(5):
            slow.next_round()  # the attack goes on between (and during) the valid requests
            t0 = time.monotonic()
            assert kept.get(openmi.Instance("Sample_Watched", {"Id": i})) is not None  # the kept-alive client
            fresh = session(app, r.http_port)  # a new connection during the attack
            assert fresh.get(openmi.Instance("Sample_Watched", {"Id": i})) is not None
            fresh.close()
            # served while the attack holds every anonymous slot, long before any request deadline
            held, anonymous = r.server.http.connection_counts()
            assert anonymous >= anonymous_cap - 2, (held, anonymous)
            assert time.monotonic() - t0 < request_timeout
        rounds = slow.rounds
        assert slow.alive() >= anonymous_cap - 2  # still trickling: the attack was on throughout
        kept.close()
    finally:
        if slow is not None:
            slow.close()
        app.close()
        r.server.stop()
        r.engine.close()
    assert rounds >= 5


def test_a_request_must_arrive_whole_within_the_request_timeout(tmp_path: Path) -> None:
    r = running(tmp_path, request_timeout=0.5, idle_timeout=60.0)
    try:
        sock = connect(r.http_port)
        stop = threading.Event()

        def trickle() -> None:  # one byte every 0.05 s: a per-read timeout would never fire
            for b in valid_request():
                if stop.wait(0.05):
                    return
                try:
                    sock.send(bytes([b]))
                except OSError:
                    return

        t = threading.Thread(target=trickle, name="test-trickle")
        t.start()
        answer = read_to_close(sock)
        stop.set()
        t.join(5)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert r.recorder.calls == []
    finally:
        r.server.stop()
        r.engine.close()


def test_an_idle_kept_alive_connection_is_closed(tmp_path: Path) -> None:
    r = running(tmp_path, idle_timeout=0.3)
    try:
        sock = connect(r.http_port)
        sock.sendall(valid_request())
        answer = read_to_close(sock)  # the answer, then the close once the connection sat idle
        sock.close()
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.count(b"HTTP/1.1") == 1
    finally:
        r.server.stop()
        r.engine.close()


def test_anonymous_connections_per_address_are_capped(tmp_path: Path) -> None:
    r = running(tmp_path, max_connections_per_address=3, request_timeout=60.0)
    held: list[socket.socket] = []
    try:
        for _ in range(3):
            sock = connect(r.http_port, "127.0.0.20")
            sock.sendall(b"POST /wsman HTTP/1.1\r\n")
            held.append(sock)
        time.sleep(http.FRESH_GRACE + 0.2)  # (not a measurement: the held requests must be old enough)
        for _ in range(3):  # a flood from one address renews only its own share of the slots
            sock = connect(r.http_port, "127.0.0.20")
            sock.sendall(b"POST /wsman HTTP/1.1\r\n")
            held.append(sock)
        for old in held[:3]:
            assert read_to_close(old) == b""  # the old ones were displaced: closed without an answer
        assert r.server.http.connection_counts()[1] <= 3
        other = connect(r.http_port, "127.0.0.21")  # another address is not affected
        other.sendall(valid_request())
        other.settimeout(GENEROUS)
        assert other.recv(65536).startswith(b"HTTP/1.1 200 OK")
        other.close()
        same = connect(r.http_port, "127.0.0.20")  # and a valid client behind the flooding address gets in
        same.sendall(valid_request())
        same.settimeout(GENEROUS)
        assert same.recv(65536).startswith(b"HTTP/1.1 200 OK")
        same.close()
    finally:
        for sock in held:
            sock.close()
        r.server.stop()
        r.engine.close()


def test_a_full_server_refuses_with_503(tmp_path: Path) -> None:
    r = running(tmp_path, max_connections=2, reserved_connections=1, max_connections_per_address=10)
    try:
        kept = []
        for _ in range(2):  # two authenticated kept-alive connections: trusted, never displaced
            sock = connect(r.http_port)
            sock.sendall(valid_request())
            sock.settimeout(GENEROUS)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
            kept.append(sock)
        extra = connect(r.http_port)
        answer = read_to_close(extra)
        extra.close()
        assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in answer
        for sock in kept:
            sock.sendall(valid_request())
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
            sock.close()
    finally:
        r.server.stop()
        r.engine.close()


def test_limits_come_from_the_configuration_file(tmp_path: Path) -> None:
    from openmi.wsman_server.config import ServeConfig

    conf = tmp_path / "openmi.conf"
    conf.write_text("request_timeout = 2.5\nidle_timeout = 7\nmax_connections_per_address = 5\n"
                    "reserved_connections = 3\n")
    cfg = ServeConfig.load(conf)
    assert (cfg.request_timeout, cfg.idle_timeout, cfg.max_connections_per_address, cfg.reserved_connections) == (
        2.5, 7.0, 5, 3)
    for bad in ("request_timeout = 0", "idle_timeout = -1", "request_timeout = soon", "reserved_connections = x"):
        conf.write_text(bad + "\n")
        with pytest.raises(ValueError, match=bad.split(" ")[0]):
            ServeConfig.load(conf)
    with pytest.raises(ValueError, match="reserved_connections"):
        running(tmp_path, max_connections=4, reserved_connections=4)


def test_busy_poll_comes_from_the_configuration_and_reaches_the_loop(tmp_path: Path) -> None:
    from openmi.wsman_server.config import ServeConfig

    conf = tmp_path / "openmi.conf"
    conf.write_text("busy_poll_us = 0\n")
    assert ServeConfig.load(conf).busy_poll_us == 0
    assert ServeConfig().busy_poll_us == 100
    for bad in ("busy_poll_us = -1", "busy_poll_us = 20000", "busy_poll_us = soon"):
        conf.write_text(bad + "\n")
        with pytest.raises(ValueError, match="busy_poll_us"):
            ServeConfig.load(conf)
    r = running(tmp_path, busy_poll_us=250)
    try:
        assert r.server.http.limits.busy_poll == 0.00025
    finally:
        r.server.stop()
        r.engine.close()


@pytest.mark.parametrize("busy_poll_us", [0, 100, 5000])
def test_requests_close_together_and_after_a_pause_are_answered_whatever_the_busy_poll(
        tmp_path: Path, busy_poll_us: int) -> None:
    """The loop looks again before it sleeps while requests come close together, and sleeps at once after a
    long pause (0: always at once); every request is answered either way."""
    r = running(tmp_path, busy_poll_us=busy_poll_us)
    try:
        sock = connect(r.http_port)
        for _ in range(20):  # back to back
            sock.sendall(valid_request())
            assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        time.sleep(0.3)  # a pause much longer than four looks (the loop also wakes for its sweep meanwhile)
        assert r.server.http._close_together is False
        sock.sendall(valid_request())
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        sock.close()
    finally:
        r.server.stop()
        r.engine.close()


# --- issue 15: one event loop, a thread only for a slow request ----------------------------------------
_LEFT: dict[socket.socket, bytes] = {}  # bytes of a next response already read (pipelined answers)


def read_response(sock: socket.socket) -> bytes:
    """One whole response (head and Content-Length body) from a kept-alive connection; its head."""
    sock.settimeout(GENEROUS)
    data = _LEFT.pop(sock, b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        body += chunk
    if len(body) > length:
        _LEFT[sock] = body[length:]
    return head


def test_kept_alive_connections_hold_no_thread(served_http: Running) -> None:
    """Sixty clients, each answered and keeping its connection open: the server's threads stay few
    (one thread per connection would add sixty)."""
    before = threading.active_count()
    socks = [connect(served_http.http_port, f"127.0.0.{2 + i % 4}") for i in range(60)]
    try:
        for sock in socks:
            sock.sendall(valid_request())
        for sock in socks:
            assert read_response(sock).startswith(b"HTTP/1.1 200")
        assert threading.active_count() - before <= 3
        assert served_http.server.http.connection_counts()[0] == 60
        for sock in socks:  # and every one of them is still served
            sock.sendall(valid_request())
            assert read_response(sock).startswith(b"HTTP/1.1 200")
    finally:
        _LEFT.clear()
        for sock in socks:
            sock.close()
    assert served_http.recorder.calls == ["get"] * 120


def test_a_slow_request_gets_a_thread_and_its_connection_comes_back(tmp_path: Path) -> None:
    """A request that holds the loop (a provider waiting) is given a thread of its own: another
    connection is served meanwhile; then the slow connection, pipelining a fast request behind the slow
    one, gets both answers in order and goes on being served by the loop."""
    from .conftest import sample_engine

    engine, recorder = sample_engine()
    gate = threading.Event()
    entered = threading.Event()

    class Slow:
        def get_instance(self, ctx: object, ns: str, inst: openmi.Instance) -> openmi.Instance:
            entered.set()
            assert gate.wait(GENEROUS)
            return inst

    engine.define_class("root/cimv2", openmi.Class("Sample_Slow", properties=[
        openmi.Property("Id", openmi.MIType.UINT32, key=True)]))
    engine.register_provider("root/cimv2", "Sample_Slow", Slow())
    r = start(tmp_path, allow_unencrypted=True, engine=engine, recorder=recorder)
    slow, other = connect(r.http_port), connect(r.http_port)
    try:
        slow.sendall(valid_request(envelope(GET, "Sample_Slow", watched())) + valid_request())
        assert entered.wait(GENEROUS)
        other.sendall(valid_request())
        assert read_response(other).startswith(b"HTTP/1.1 200")  # while the slow one waits
        assert recorder.calls == ["get"]
        gate.set()
        assert read_response(slow).startswith(b"HTTP/1.1 200")
        assert read_response(slow).startswith(b"HTTP/1.1 200")
        for _ in range(3):  # back in the loop
            slow.sendall(valid_request())
            assert read_response(slow).startswith(b"HTTP/1.1 200")
        assert recorder.calls == ["get"] * 5
    finally:
        gate.set()
        _LEFT.clear()
        slow.close()
        other.close()
        r.server.stop()
        engine.close()


def test_a_leader_thread_that_cannot_start_is_started_later(monkeypatch: pytest.MonkeyPatch) -> None:
    """Out of threads just when a slow request makes the watchdog hand the loop to a new thread: the loop is
    not left without a leader; the watchdog starts one once it can, and the server goes on serving."""
    from openmi.wsman_server.http import HTTPResponse, HTTPServer, Listener

    class Handler:
        authenticated = True

        def handle(self, request: object) -> HTTPResponse:
            time.sleep(0.1)  # holds the loop: the watchdog hands it to a new thread
            return HTTPResponse(200, b"ok", [])

        def shutting_down(self, request: object) -> HTTPResponse:
            return HTTPResponse(503, b"", [])

        def closed(self) -> None:
            pass

    srv = HTTPServer([Listener("127.0.0.1", 0)], lambda peer, tls: Handler())
    srv.start()
    start = threading.Thread.start
    refused = threading.Event()

    def no_thread(self: threading.Thread) -> None:
        if self.name == "openmi-http" and not refused.is_set():
            refused.set()
            raise RuntimeError("can't start new thread")
        start(self)

    monkeypatch.setattr(threading.Thread, "start", no_thread)
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"
    try:
        for _ in range(3):
            sock = socket.create_connection(("127.0.0.1", srv.listeners[0].port))
            sock.sendall(request)
            assert read_response(sock).startswith(b"HTTP/1.1 200")
            sock.close()
        assert refused.is_set()
    finally:
        monkeypatch.undo()
        _LEFT.clear()
        srv.shutdown(5)


def test_a_worker_holding_more_connections_leaves_new_ones_to_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes share the listening sockets (the counts of connections each holds in shared memory): a
    worker that holds more than another stops watching the listeners for a moment so that the other takes the
    next connection, and one that holds no more than any other accepts at once. A pause that runs out with
    nobody taking the connection ends with this worker taking it: a connection is never left waiting."""
    from openmi.wsman_server.http import HTTPResponse, HTTPServer, Listener
    from openmi.wsman_server.quotas import ConnectionShares

    class Handler:
        authenticated = True

        def handle(self, request: object) -> HTTPResponse:
            return HTTPResponse(200, b"ok", [])

        def shutting_down(self, request: object) -> HTTPResponse:
            return HTTPResponse(503, b"", [])

        def closed(self) -> None:
            pass

    shares = ConnectionShares(4)
    shares.set(1, 5)  # the other worker holds five
    srv = HTTPServer([Listener("127.0.0.1", 0)], lambda peer, tls: Handler(), balance=(shares, 0, 2))
    pauses: list[float] = []
    stop = srv._stop_accepting

    def paused() -> None:
        pauses.append(time.monotonic())
        stop()

    monkeypatch.setattr(srv, "_stop_accepting", paused)
    srv.start()
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"
    socks = []
    try:
        for _ in range(5):  # fewer than the other worker holds (or as many): each taken at once
            sock = socket.create_connection(("127.0.0.1", srv.listeners[0].port))
            sock.sendall(request)
            assert read_response(sock).startswith(b"HTTP/1.1 200")
            socks.append(sock)
        assert pauses == [] and shares.get(0) == 5
        shares.set(1, 0)  # now the other holds none: this one leaves the next connection to it, for a moment
        sock = socket.create_connection(("127.0.0.1", srv.listeners[0].port))
        sock.sendall(request)
        assert read_response(sock).startswith(b"HTTP/1.1 200")  # nobody took it: served here after the pause
        socks.append(sock)
        assert len(pauses) >= 1 and shares.get(0) == 6
    finally:
        for sock in socks:
            sock.close()
        srv.shutdown(5)

