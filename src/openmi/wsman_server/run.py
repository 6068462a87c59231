"""WSManServer: the engine served over WS-Management — listeners, authentication, service — started
and stopped as one (what ``openmi serve`` runs, and what tests start on port 0)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..engine.pgrepository import is_postgres_url
from ..engine.server import Server
from .auth import SharedAuthState
from .config import ServeConfig, config_dir
from .eventing import EventingConfig
from .forward import PeerListener, Peers
from .hosts import HostPeers
from .http import HTTPServer, Limits, Listener
from .service import ServiceConfig, WSManService
from .tls import create_self_signed, server_context
from .users import UserStore

log = logging.getLogger("openmi.wsman_server")


class WSManServer:
    """Serve ``engine`` (or the repository the config names) over WS-Man until :meth:`stop`."""

    def __init__(self, config: ServeConfig | None = None, *, engine: Server | None = None,
                 auth: Any = "default", listeners: list[Listener] | None = None, peers: Peers | None = None,
                 shared_auth: SharedAuthState | None = None) -> None:
        """``listeners``: sockets bound already (the workers of ``openmi serve --workers`` share them);
        ``peers``: this worker's slot among them, and where the others take the requests for their contexts;
        ``shared_auth``: the login throttles and hashing slots all the workers share."""
        self.config = cfg = config or ServeConfig()
        self._own_engine = engine is None
        self.engine = engine if engine is not None else Server(cfg.repository)
        self._hosts: HostPeers | None = None
        try:
            self.users = UserStore(cfg.users)
            if is_postgres_url(self.engine.path):  # other hosts may hold the contexts a Pull continues
                cert, key = certificate_paths(cfg)
                bind = cfg.peer_bind or cfg.bind
                self._hosts = HostPeers(self.engine.repository, bind, cfg.peer_address, cert, key)
            if auth == "default":
                from .auth import ServerAuth

                auth = tuple(ServerAuth(self.users, https=https, allow_unencrypted=cfg.allow_unencrypted,
                                        shared=shared_auth) for https in (False, True))
            self.service = WSManService(self.engine, auth, ServiceConfig(
                max_envelope_size=cfg.max_envelope_size, enumeration_expiry=cfg.enumeration_expiry,
                max_enumerations_per_user=cfg.max_enumerations_per_user, client_shapes=cfg.client_shapes,
                eventing=EventingConfig(
                    max_subscriptions_per_user=cfg.max_subscriptions_per_user,
                    idle_limit=cfg.subscription_idle_limit, buffer=cfg.subscription_buffer)), peers=peers,
                quotas=None if shared_auth is None else shared_auth.quotas, hosts=self._hosts)
            self._peers = peers
            self._peer_listener: PeerListener | None = None
            if listeners is None:
                listeners = self._listeners()
            check_config(cfg, listeners)
            # the connection bounds are the server's: N workers (each taking about 1/N of the connections, as
            # the kernel spreads them over the listening sockets they share) hold a share each
            share = peers.count if peers is not None else 1
            most = -(-cfg.max_connections // share)
            self.http = HTTPServer(listeners, self.service.connection, Limits(
                max_body_bytes=max(cfg.max_envelope_size * 2, 1 << 20), max_connections=most,
                max_connections_per_address=-(-cfg.max_connections_per_address // share),
                reserved_connections=cfg.reserved_connections * most // cfg.max_connections,
                request_timeout=cfg.request_timeout, idle_timeout=cfg.idle_timeout,
                accept_batch=64 if share == 1 else 1, busy_poll=cfg.busy_poll_us / 1e6),
                balance=None if peers is None or shared_auth is None else (shared_auth.connections, peers.slot, share))
            self.http.bind()  # (a port in use fails here, before the repository is touched)
            # last: a start that fails for anything above (a certificate, a users file, a port) leaves the
            # repository as it was (each MOF file loads whole or not at all, and again at the next start)
            for path in cfg.mof:
                self.engine.compile_mof(path)
        except BaseException:
            if getattr(self, "http", None) is not None:
                self.http.shutdown(0)  # (never started: this closes its sockets)
            if self._hosts is not None:
                self._hosts.stop()
            if self._own_engine:
                self.engine.close()
            raise

    def _listeners(self) -> list[Listener]:
        cfg = self.config
        listeners = []
        if cfg.http_port is not None:
            listeners.append(Listener(cfg.bind, cfg.http_port))
        if cfg.https_port is not None:
            cert, key = self._certificate()
            listeners.append(Listener(cfg.bind, cfg.https_port, server_context(cert, key)))
        return listeners

    def _certificate(self) -> tuple[str, str]:
        return certificate_paths(self.config)

    def start(self) -> list[str]:
        """Bind every listener (port 0 picks a free port) and return their URLs."""
        if self._peers is not None:
            self._peer_listener = PeerListener(self._peers, self.service)
            self._peer_listener.start()
        if self._hosts is not None:
            self._hosts.start(self.service)
        self.http.start()
        return self.urls

    @property
    def urls(self) -> list[str]:
        return self.http.urls

    def url(self, scheme: str = "http") -> str:
        for lst in self.http.listeners:
            if lst.scheme == scheme:
                return lst.url
        raise LookupError(f"no {scheme} listener")

    def port(self, scheme: str = "http") -> int:
        for lst in self.http.listeners:
            if lst.scheme == scheme:
                return lst.port
        raise LookupError(f"no {scheme} listener")

    def stop(self) -> None:
        """Finish requests in flight, refuse new ones with SERVER_IS_SHUTTING_DOWN, close everything."""
        self.service.begin_shutdown()
        self.http.shutdown(self.config.shutdown_timeout)
        if self._hosts is not None:
            self._hosts.stop()
        if self._peer_listener is not None:
            self._peer_listener.stop()
        self.service.close()
        if self._own_engine:
            self.engine.close()

    def __enter__(self) -> WSManServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def certificate_paths(cfg: ServeConfig) -> tuple[str, str]:
    """The HTTPS certificate and key files: the configured ones, else made on first use in config_dir()."""
    cert = Path(cfg.cert_file) if cfg.cert_file else config_dir() / "server.crt"
    key = Path(cfg.key_file) if cfg.key_file else config_dir() / "server.key"
    if not cert.exists() and not key.exists() and not cfg.cert_file:
        create_self_signed(cert, key)
        log.warning("created a self-signed certificate %s for HTTPS", cert)
    return str(cert), str(key)


def check_config(cfg: ServeConfig, listeners: list[Listener] | None = None) -> None:
    """ValueError naming what cannot be served (before anything starts)."""
    if not listeners if listeners is not None else cfg.http_port is None and cfg.https_port is None:
        raise ValueError("no listener: give an HTTP or an HTTPS port")
    if not 0 <= cfg.reserved_connections < cfg.max_connections:
        raise ValueError(f"reserved_connections ({cfg.reserved_connections}) must be less than "
                         f"max_connections ({cfg.max_connections})")
    if cfg.client_shapes not in ("auto", "winrm", "omi"):
        raise ValueError(f"client_shapes is auto, winrm or omi, not {cfg.client_shapes!r}")
    if cfg.max_connections_per_address < 1:
        raise ValueError("max_connections_per_address must be at least 1")
