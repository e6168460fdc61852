"""Native libraries imported one thread at a time.

The request path loads the index (chromadb), the embedder (onnxruntime) and the generator on
worker threads at once. numpy 2.x cannot be imported by two threads at the same time: the
second gets a partially initialised module ("cannot import name 'NDArray' from partially
initialized module 'numpy._typing'"), so a cold `ask`, `profile` or `serve` failed. Every
import of a library that pulls numpy in goes through `native_import`, which holds one lock
for the import; a module already imported costs a dictionary lookup.
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType

_lock = threading.RLock()


def native_import(name: str) -> ModuleType:
    """`import name`, never concurrently with another native import."""
    module = sys.modules.get(name)
    if module is not None and not _initialising(module):
        return module
    with _lock:
        importlib.import_module("numpy")  # what chromadb and onnxruntime import first
        return importlib.import_module(name)


def _initialising(module: ModuleType) -> bool:
    spec = getattr(module, "__spec__", None)
    return bool(getattr(spec, "_initializing", False))
