"""What the security tests share: a server with users of different rights, raw HTTP, envelopes, RSS."""

from __future__ import annotations

import base64
import http.client
import os
import shutil
import signal
import ssl
import subprocess
import sys
import uuid
from pathlib import Path

from openmi.wsman_server.users import UserStore
from tests.wsman_server.conftest import PASSWORD, Running

SOAP = "application/soap+xml;charset=UTF-8"
WMI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/"
T = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
GET, PUT, CREATE, DELETE = T + "Get", T + "Put", T + "Create", T + "Delete"
ENUMERATE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
PULL = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull"
RELEASE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Release"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

__all__ = ["PASSWORD", "Running"]


def basic(user: str = "alice", password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def envelope(action: str, resource_uri: str, selectors: str = "", body: str = "", extra: str = "") -> bytes:
    """A WS-Man request; ``resource_uri`` without a scheme is a class of root/cimv2 (WMI style)."""
    uri = resource_uri if "://" in resource_uri else WMI + resource_uri
    return f"""<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
 xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
 xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration">
<s:Header><a:To>http://localhost/wsman</a:To><w:ResourceURI s:mustUnderstand="true">{uri}</w:ResourceURI>
<a:ReplyTo><a:Address>{ANONYMOUS}</a:Address></a:ReplyTo>
<a:Action s:mustUnderstand="true">{action}</a:Action><a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>
{extra}{selectors}</s:Header><s:Body>{body}</s:Body></s:Envelope>""".encode()


def selector(name: str, value: str) -> str:
    return f'<w:SelectorSet><w:Selector Name="{name}">{value}</w:Selector></w:SelectorSet>'


def person(pid: int, name: str, cls: str = "Sample_Person") -> str:
    return f'<p:{cls} xmlns:p="{WMI}{cls}"><p:Id>{pid}</p:Id><p:Name>{name}</p:Name></p:{cls}>'


def https(r: Running) -> http.client.HTTPSConnection:
    ctx = ssl.create_default_context(cafile=str(r.cert))
    return http.client.HTTPSConnection("127.0.0.1", r.https_port, context=ctx, timeout=30)


def plain(r: Running) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", r.http_port, timeout=30)


def post(conn: http.client.HTTPConnection, body: bytes, headers: dict[str, str] | None = None,
         path: str = "/wsman") -> tuple[int, dict[str, str], bytes]:
    h = {"Content-Type": SOAP}
    h.update(headers or {})
    conn.request("POST", path, body, h)
    resp = conn.getresponse()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


MOF = """
Qualifier Key : boolean = false, Scope(property, reference), Flavor(DisableOverride, ToSubclass);
class Sample_Person { [Key] uint32 Id; string Name; string Tags[]; datetime Born; };
class Sample_Named { [Key] string Name; string Note; };
"""


def openmi_exe() -> list[str]:
    exe = shutil.which("openmi", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "openmi"]


class ServeProcess:
    """``openmi serve`` in its own process on an HTTP port picked by the system (plain HTTP, Basic allowed)."""

    def __init__(self, tmp: Path, repository: Path | None = None, extra: list[str] | None = None) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.users = tmp / "users.json"
        if not self.users.exists():
            store = UserStore(self.users)
            store.add("alice", PASSWORD)
            store.add("reader", PASSWORD, rights={"*": "r"})
        mof = tmp / "sample.mof"
        mof.write_text(MOF)
        self.repository = repository or tmp / "repository.db"
        env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "config"), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [*openmi_exe(), "serve", "--repository", str(self.repository), "--users", str(self.users),
             "--http-port", "0", "--https-port", "none", "--allow-unencrypted", "--mof-file", str(mof), *(extra or [])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.proc.kill()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"openmi serve did not start: {line!r} {err}")
        self.url = line.split()[-1]
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def connection(self, timeout: float = 30, source: str | None = None) -> http.client.HTTPConnection:
        """A connection to the server; ``source`` is another loopback address to come from (another
        client machine, as far as the per-address connection cap can tell)."""
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout,
                                          source_address=(source, 0) if source else None)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (what a crash or the OOM killer does)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._close_pipes()

    def stop(self) -> str:
        """SIGTERM and wait; the server's standard error."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        err = self.proc.stderr.read() if self.proc.stderr else ""
        self._close_pipes()
        return err

    def _close_pipes(self) -> None:
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()
