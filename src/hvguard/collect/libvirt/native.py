"""libvirt-python, loaded so that neither libvirt nor libxml2 writes to the user's terminal.

hvguard reports every libvirt failure itself, in one line. Left alone, three things in the C libraries
print to stderr as well: libvirt's default error handler (``libvirt: XML-RPC error : …``), libvirt's
logging (``… warning : esxConnectOpen …``, read from ``LIBVIRT_DEBUG`` once, when the module is
imported) and libxml2, which libvirt's test driver uses to read node files (``I/O warning : failed to
load external entity …``). :func:`load_libvirt` turns off the first two; :func:`quiet_libxml2` the third,
for the calling thread (libxml2 keeps its error handler per thread).

A user who sets ``LIBVIRT_DEBUG`` or ``LIBVIRT_LOG_OUTPUTS`` to debug libvirt keeps their settings.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import sys
import threading
from types import ModuleType
from typing import Any

__all__ = ["load_libvirt", "quiet_libxml2"]

#: libvirt's log priority for errors only (1 debug, 2 info, 3 warning, 4 error). Errors are raised to
#: hvguard as exceptions anyway; with an error handler registered libvirt does not print them.
_ERRORS_ONLY = "4"

# libxml2's generic error callback: void (*)(void *ctx, const char *msg, ...). The variadic tail is
# ignored, which the C calling convention allows.
_HANDLER_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)


def _discard(_ctx: Any, _msg: Any) -> None:
    """Drop one libxml2 message: libvirt turns the failure into an exception with its own text."""


# Kept referenced for the life of the process: libxml2 calls it through a raw pointer.
_HANDLER = _HANDLER_TYPE(_discard)
_quieted = threading.local()
_lock = threading.Lock()


def _ignore_error(_ctx: Any, _err: Any) -> None:
    """libvirt's error handler: hvguard reports libvirt's errors from the exceptions it raises."""


def load_libvirt() -> ModuleType:
    """``import libvirt`` with libvirt's own stderr output turned off (raises ImportError without it)."""
    with _lock:
        module = sys.modules.get("libvirt")
        if module is None:
            # libvirt reads its log level from the environment once, while the module initialises;
            # the variable is removed again so that commands hvguard runs later (virsh) are unchanged.
            added = "LIBVIRT_DEBUG" not in os.environ and "LIBVIRT_LOG_OUTPUTS" not in os.environ
            if added:
                os.environ["LIBVIRT_DEBUG"] = _ERRORS_ONLY
            try:
                module = importlib.import_module("libvirt")
            finally:
                if added:
                    os.environ.pop("LIBVIRT_DEBUG", None)
        module.registerErrorHandler(_ignore_error, None)
    quiet_libxml2()
    return module


def quiet_libxml2() -> None:
    """Stop libxml2 (the system library libvirt uses) printing parser warnings in this thread and in
    threads it starts later. Does nothing where the library cannot be loaded."""
    if getattr(_quieted, "done", False):
        return
    _quieted.done = True
    try:
        lib = ctypes.CDLL("libxml2.so.2")
    except OSError:  # no libxml2 of its own on this system: libvirt cannot be using it either
        return
    for name in ("xmlSetGenericErrorFunc", "xmlThrDefSetGenericErrorFunc"):
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.argtypes = [ctypes.c_void_p, _HANDLER_TYPE]
            fn.restype = None
            fn(None, _HANDLER)
