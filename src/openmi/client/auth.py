"""Client-side authentication and WinRM message encryption for remote sessions, sans I/O.

:class:`ClientAuth` turns credentials into ``Authorization`` header values and the server's ``WWW-Authenticate``
answers into the next ones (Basic, NTLM, Negotiate, Kerberos, CredSSP through pyspnego), then seals request bodies
and opens response bodies with the resulting security context. The HTTP transport drives it over one keep-alive
connection::

    auth = ClientAuth("Negotiate", "alice", "pw", hostname="server", encryption=True)
    value = auth.initial_header()                # or wait for the first 401 and call auth.step(challenge)
    while value is not None:
        response = post(b"", authorization=value)   # handshake legs carry an empty body, as pypsrp/pywinrm do
        value = auth.step(response.www_authenticate)  # on a 401, and on the final 200 (it may carry a token)
    ctype, body = auth.seal_body("application/soap+xml;charset=UTF-8", envelope)
    ...
    ctype, body = auth.open_body(response.content_type, response.body)
"""

from __future__ import annotations

import base64
import binascii
import re

import spnego
from spnego.channel_bindings import GssChannelBindings

from ..protocol.wsman import encryption

__all__ = ["ClientAuth", "ClientAuthError", "tls_channel_bindings"]

# scheme → (pyspnego protocol, Authorization word, encryption protocol); MI_AUTH_TYPE_* names map onto them.
_SCHEMES: dict[str, tuple[str, str, str]] = {
    "Negotiate": ("negotiate", "Negotiate", encryption.SPNEGO),
    # Raw NTLM goes in a Negotiate header, as pypsrp and requests-ntlm send it: WinRM only advertises Negotiate.
    "NTLM": ("ntlm", "Negotiate", encryption.SPNEGO),
    "Kerberos": ("kerberos", "Kerberos", encryption.KERBEROS),
    "CredSSP": ("credssp", "CredSSP", encryption.CREDSSP),
}
_ALIASES = {"basic": "Basic", "negotiate": "Negotiate", "ntlm": "NTLM", "kerberos": "Kerberos", "credssp": "CredSSP",
            "default": "Negotiate", "negowithcreds": "Negotiate", "ntlmdomain": "NTLM"}


class ClientAuthError(Exception):
    """The server refused the credentials, or sent something that cannot be trusted."""


def tls_channel_bindings(certificate_der: bytes) -> GssChannelBindings:
    """The ``tls-server-end-point`` channel bindings (RFC 5929) for a server certificate, for NTLM/Kerberos over TLS."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_der_x509_certificate(certificate_der)
    algorithm = cert.signature_hash_algorithm
    if algorithm is None or isinstance(algorithm, (hashes.MD5, hashes.SHA1)):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(certificate_der)
    return GssChannelBindings(application_data=b"tls-server-end-point:" + digest.finalize())


class ClientAuth:
    """One connection's authentication: header values out, challenges in; then sealing and opening bodies."""

    def __init__(self, scheme: str, username: str | None, password: str | None, domain: str | None = None,
                 hostname: str = "unspecified", service: str = "HTTP", encryption: bool = False, *,
                 channel_bindings: GssChannelBindings | None = None) -> None:
        canonical = _ALIASES.get(scheme.lower())
        if canonical is None:
            raise ValueError(f"unsupported authentication scheme {scheme!r}")
        self.scheme = canonical
        self.encryption = encryption
        self._username = username or ""
        self._password = password or ""
        self._sent = False
        self._rejected = False
        self._context: spnego.ContextProxy | None = None
        if canonical == "Basic":
            if encryption:
                raise ValueError("Basic authentication cannot encrypt messages; use HTTPS or NTLM/Negotiate/Kerberos")
            if ":" in self._username:
                raise ValueError("a Basic user name cannot contain ':'")
            self._word, self._protocol = "Basic", ""
            return
        protocol, self._word, self._protocol = _SCHEMES[canonical]
        principal = f"{domain}\\{username}" if domain and username else username
        options = spnego.NegotiateOptions.wrapping_winrm if encryption else spnego.NegotiateOptions.none
        try:
            self._context = spnego.client(principal, password, hostname=hostname, service=service,
                                          channel_bindings=channel_bindings, protocol=protocol, options=options)
        except Exception as e:  # e.g. Kerberos without GSSAPI, or wrapping_winrm unavailable
            raise ClientAuthError(f"cannot start {canonical} authentication: {e}") from e

    @property
    def complete(self) -> bool:
        """Whether the handshake is over from this side (the server may still refuse with a 401)."""
        if self._context is None:
            return self._sent and not self._rejected
        return self._context.complete

    @property
    def protocol(self) -> str | None:
        """The encryption protocol string of this scheme (None for Basic)."""
        return self._protocol or None

    def initial_header(self) -> str | None:
        """The first ``Authorization`` value, to send before any challenge."""
        if self._sent:
            raise ClientAuthError("the handshake has started already")
        self._sent = True
        if self._context is None:
            raw = f"{self._username}:{self._password}".encode()
            return "Basic " + base64.b64encode(raw).decode("ascii")
        return self._token_header(self._step(None))

    def step(self, www_authenticate: str | None) -> str | None:
        """The next ``Authorization`` value for the server's ``WWW-Authenticate`` value(s), or None when done.

        Call it on every 401, and on the 200 that ends a handshake if it carries a token. Raises
        :class:`ClientAuthError` when the server rejects the credentials.
        """
        offered = www_authenticate or ""
        if not self._sent:
            if (self.scheme == "NTLM" and _challenge_token(offered, "Negotiate") is None
                    and _challenge_token(offered, "NTLM") is not None):
                self._word = "NTLM"  # a server that offers only the NTLM scheme
            return self.initial_header()
        if self._context is None:
            if www_authenticate is not None:  # a challenge in answer to our Basic credentials
                self._rejected = True
                raise ClientAuthError("the server rejected the Basic credentials")
            return None
        token = _challenge_token(offered, self._word)
        if not token:
            if self._context.complete or www_authenticate is None:
                return None
            self._rejected = True
            raise ClientAuthError(f"the server rejected the {self.scheme} authentication")
        try:
            data = base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError) as e:
            raise ClientAuthError(f"the server sent a malformed {self._word} token") from e
        return self._token_header(self._step(data))

    def seal_body(self, content_type: str, body: bytes) -> tuple[str, bytes]:
        """The request body as sent: sealed when this connection encrypts (empty bodies never are)."""
        if not self.encryption or not body:
            return content_type, body
        assert self._context is not None
        try:
            return encryption.encrypt(self._context, body, protocol=self._protocol, content_type=content_type)
        except Exception as e:
            raise ClientAuthError(f"cannot seal the message: {e}") from e

    def open_body(self, content_type: str | None, body: bytes) -> tuple[str | None, bytes]:
        """The response body in plaintext and its content type."""
        if encryption.is_encrypted(content_type):
            assert content_type is not None
            if self._context is None:
                raise ClientAuthError("encrypted response without a security context")
            try:
                plain = encryption.decrypt(self._context, content_type, body)
            except Exception as e:
                raise ClientAuthError(f"the encrypted response does not decrypt: {e}") from e
            allowed = {self._protocol} | ({encryption.SPNEGO} if self._protocol == encryption.KERBEROS else set())
            if plain.protocol not in allowed:
                raise ClientAuthError(f"the response is sealed for {plain.protocol}, not {self._protocol}")
            return plain.content_type, plain.body
        if self.encryption and body:
            raise ClientAuthError("the server answered in plaintext although this connection encrypts")
        return content_type, body

    def _step(self, token: bytes | None) -> bytes | None:
        assert self._context is not None
        try:
            return self._context.step(token)
        except Exception as e:  # pyspnego raises many types for bad server tokens
            self._rejected = True
            raise ClientAuthError(f"{self.scheme} authentication failed: {e}") from e

    def _token_header(self, token: bytes | None) -> str | None:
        return None if token is None else f"{self._word} {base64.b64encode(token).decode('ascii')}"


def _challenge_token(value: str, word: str) -> str | None:
    """The token after *word* in a WWW-Authenticate value ('' when the scheme is offered bare, None if absent)."""
    for m in re.finditer(r"(?:^|,)\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)(?:[ \t]+([^\s,]+))?",
                         value):
        if m.group(1).lower() == word.lower():
            return m.group(2) or ""
    return None
