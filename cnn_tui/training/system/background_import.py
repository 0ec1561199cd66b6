"""Import a slow module on a background thread while the main thread does work that lets go of
the GIL.

Every `torch.optim` optimizer imports `torch._dynamo` when it is built: 1.0-1.5 s of CPU on 2
cores, spent before the first batch (as long as `import torch` itself). The trainer starts that
import once its settings are checked, before it makes its run folder (`trainer.train`), and the
engine as the data set loads (a no-op when it is under way: Fashion-MNIST's files inflate in zlib,
which releases the GIL), so it overlaps the run folder's files, the engine's modules and the data.

`wait()` before the main thread imports anything of torch's or torchvision's itself: two threads
importing modules that import each other can deadlock, which Python breaks by raising
`_DeadlockError` in one of them. A failed background import is dropped silently: the main
thread's own import of the module raises the real error where it matters.
"""

from __future__ import annotations

import importlib
import sys
import threading

_pending: dict[str, threading.Thread] = {}


def start(name: str) -> None:
    """Begin importing module `name` on a daemon thread (nothing when it is imported already or
    its import is under way)."""
    if name in sys.modules or name in _pending:
        return
    thread = threading.Thread(target=_load, args=(name,), name=f"import {name}", daemon=True)
    thread.start()
    _pending[name] = thread


def _load(name: str) -> None:
    try:
        importlib.import_module(name)
    except BaseException:  # noqa: BLE001 - reported by the main thread's own import
        pass


def wait() -> None:
    """Until every import begun by `start` has ended."""
    while _pending:
        _pending.popitem()[1].join()
