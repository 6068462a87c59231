"""A request for a context another worker holds is handed to that worker. When the worker cannot be reached the
context is gone with it (it is answered as unknown, here); when it took the request whole and then gave no
answer (it stopped mid-request), it may have acted, so the answer is FAILED saying so, never "unknown"."""

from __future__ import annotations

import base64
import http.client
import socket
import threading
from pathlib import Path

import pytest

from openmi import MIError, MIResult
from openmi.protocol import wsman
from openmi.wsman_server.config import ServeConfig
from openmi.wsman_server.forward import Peers
from openmi.wsman_server.run import WSManServer

from .conftest import PASSWORD, sample_engine, start


def _post(port: int, req: wsman.Request) -> wsman.Response:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        auth = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
        conn.request("POST", "/wsman", wsman.build_request(req), {
            "Content-Type": "application/soap+xml;charset=UTF-8", "Authorization": f"Basic {auth}"})
        r = conn.getresponse()
        return wsman.parse_response(r.read(), r.getheader("Content-Type"), req)
    finally:
        conn.close()


class MuteWorker:
    """Worker 1 as it dies mid-request: it reads each whole request, then closes without a word."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.taken: list[bytes] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen()
        self.sock.settimeout(0.1)  # (a close from another thread does not wake a blocked accept)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with conn:
                data = b""
                while chunk := conn.recv(65536):  # (the sender shuts its side once the request is out)
                    data += chunk
                self.taken.append(data)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.sock.close()
        Path(self.path).unlink()


def test_taken_but_unanswered_is_failed_unreachable_is_unknown(tmp_path: Path) -> None:
    peers_dir = tmp_path / "peers"
    peers_dir.mkdir()
    mute = MuteWorker(str(peers_dir / "w1.sock"))
    base = start(tmp_path, allow_unencrypted=True)  # (users, certificate) and a plain server to compare with
    base.server.stop()
    engine, _ = sample_engine()
    cfg = ServeConfig(http_port=0, https_port=None, users=str(base.users), allow_unencrypted=True,
                      shutdown_timeout=5.0)
    server = WSManServer(cfg, engine=engine, peers=Peers(0, str(peers_dir), 2))
    server.start()
    try:
        pull = wsman.PullRequest(namespace="root/cimv2", class_name="Sample_Person", context="uuid:0b1e-w1")
        with pytest.raises(MIError) as taken:
            _post(server.port("http"), pull)
        assert taken.value.result == MIResult.FAILED
        assert "did not answer" in taken.value.message and "unknown" in taken.value.message
        assert any(b"uuid:0b1e-w1" in t for t in mute.taken)  # worker 1 did get the Pull

        mute.stop()  # now worker 1 cannot be reached at all: its contexts went with it
        with pytest.raises(MIError) as gone:
            _post(server.port("http"), pull)
        assert gone.value.result != MIResult.FAILED
        assert "did not answer" not in gone.value.message
    finally:
        server.stop()
        engine.close()
        base.engine.close()
