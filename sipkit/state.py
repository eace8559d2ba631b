"""Where sipkit keeps what must outlive one process on this host (the probe lockout, the
create locks): ``$SIPKIT_STATE_DIR``, else ``$XDG_STATE_HOME/sipkit``, else
``~/.local/state/sipkit``. Imports nothing of sipkit."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    base = os.environ.get("SIPKIT_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "sipkit")
    return Path(base)
