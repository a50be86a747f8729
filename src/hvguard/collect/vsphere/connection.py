"""One authenticated, certificate-verified session with an ESXi host or a vCenter (pyVmomi, lazily).

Certificate verification is always on: the system CAs, or ``--tls-ca FILE`` — and the SSL context is
always passed explicitly, because pyVmomi's ``SmartConnect`` silently verifies nothing for ``localhost``
and ``127.0.0.1`` when it is given none. ``--tls-insecure`` is the one way to turn it off.
Every way a target can fail to answer (refused, unresolvable, TLS refused or not trusted, login refused,
not a vSphere endpoint) becomes :class:`VsphereUnreachable` with a one-line reason that never contains
the password.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

from hvguard.collect.interface import CollectError
from hvguard.collect.vsphere.target import VsphereOptions, VsphereTarget, VsphereTargetError

#: Seconds for one HTTP request to the API (a vCenter answering a large read takes a while).
REQUEST_TIMEOUT_S = 120


class VsphereUnreachable(CollectError):
    """Nothing could be collected from the target; ``str()`` is the one-line reason."""


def fault_text(exc: BaseException) -> str:
    """A one-line name and message of an API fault or a transport error."""
    name = getattr(exc, "_wsdlName", None) or type(exc).__name__
    msg = getattr(exc, "msg", None)
    if not msg and hasattr(exc, "_wsdlName"):
        # An API fault without a message (vcsim's InvalidName): name what it is about, never its repr.
        about = getattr(exc, "name", None) or getattr(exc, "obj", None)
        msg = f"{about}" if isinstance(about, str) else ""
    elif not msg:
        msg = str(exc)
    text = " ".join(str(msg).split())
    return f"{name}: {text}" if text and text != name else str(name)


def ssl_context(options: VsphereOptions) -> ssl.SSLContext:
    """The TLS context for API and REST calls: verified against the system CAs or ``--tls-ca``."""
    if options.tls_insecure:
        return ssl._create_unverified_context()  # noqa: S323 - the user's explicit, reported choice
    try:
        ctx = ssl.create_default_context(cafile=str(options.tls_ca) if options.tls_ca else None)
    except (OSError, ssl.SSLError) as exc:
        raise VsphereTargetError(f"--tls-ca {options.tls_ca}: not a readable PEM CA file ({exc})") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


@dataclass
class Connection:
    """A logged-in session: ``si`` (ServiceInstance), ``content`` (ServiceContent), the target and the TLS
    context (reused by the vAPI REST client), and the session cookie for it."""

    target: VsphereTarget
    si: Any
    content: Any
    context: ssl.SSLContext
    password: str = field(repr=False)
    """Kept for the vAPI REST login; never shown (``repr=False``), never logged."""
    insecure: bool = False

    @property
    def is_vcenter(self) -> bool:
        """True for a vCenter (``about.apiType`` VirtualCenter), False for a standalone ESXi."""
        return str(self.content.about.apiType) == "VirtualCenter"

    def close(self) -> None:
        """Log out; a session that is already gone is not an error."""
        with contextlib.suppress(Exception):
            self.content.sessionManager.Logout()


def connect(target: VsphereTarget, options: VsphereOptions, password: str) -> Connection:
    """Log in to ``target``; :class:`VsphereUnreachable` (one line) when it cannot be used."""
    try:
        from pyVim.connect import SmartConnect
        from pyVmomi import vim, vmodl
    except ImportError:
        raise VsphereTargetError("vsphere:// targets need pyVmomi: pip install 'hvguard[vsphere]'") from None
    context = ssl_context(options)
    where = f"{target.host}:{target.port}"
    try:
        si = SmartConnect(
            host=target.host,
            port=target.port,
            user=target.user,
            pwd=password,
            sslContext=context,
            httpConnectionTimeout=REQUEST_TIMEOUT_S,
            connectionPoolTimeout=-1,
        )
    except vim.fault.InvalidLogin:
        raise VsphereUnreachable(f"login refused for {target.user} at {where} (InvalidLogin)") from None
    except ssl.SSLCertVerificationError as exc:
        raise VsphereUnreachable(
            f"TLS certificate of {where} not trusted: {exc.verify_message or exc.reason}"
            " (trust its CA with --tls-ca FILE)"
        ) from None
    except ssl.SSLError as exc:
        raise VsphereUnreachable(f"TLS handshake with {where} failed: {exc.reason or exc}") from None
    except vmodl.MethodFault as exc:
        raise VsphereUnreachable(f"{where}: {fault_text(exc)}") from None
    except (socket.gaierror, socket.herror) as exc:
        raise VsphereUnreachable(f"{target.host}: cannot resolve the name ({exc.strerror or exc})") from None
    except TimeoutError:
        raise VsphereUnreachable(f"{where}: no answer within {REQUEST_TIMEOUT_S} s") from None
    except OSError as exc:
        raise VsphereUnreachable(f"cannot connect to {where}: {exc.strerror or exc}") from None
    except (http.client.HTTPException, ValueError) as exc:
        raise VsphereUnreachable(f"{where} is not a vSphere API endpoint ({fault_text(exc)})") from None
    except Exception as exc:
        raise VsphereUnreachable(
            f"{where} is not a usable vSphere API endpoint ({fault_text(exc)})"
        ) from None
    return Connection(
        target=target,
        si=si,
        content=si.RetrieveContent(),
        context=context,
        password=password,
        insecure=options.tls_insecure,
    )
