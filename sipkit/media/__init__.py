"""Test calls with media: pjsua2 in a worker process, RTP stats, an E-model MOS, verdicts.

Public surface: ``run_call`` / ``run_call_sync`` (``call``), ``CallParams``, ``CallResult``,
``Thresholds`` and the verdict names (``model``); ``mos.mos``. The names load lazily:
the worker process (``python -m sipkit.media.worker``) runs this file first and must not
pay for pydantic, nor find itself imported before it runs.
"""

from __future__ import annotations

import importlib

_EXPORTS = {"run_call": "call", "run_call_sync": "call", "CallParams": "model",
            "CallResult": "model", "Direction": "model", "Thresholds": "model"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
