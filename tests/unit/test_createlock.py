"""The create lock's key and bounds, on real flocks in a temporary state directory."""

from __future__ import annotations

import os
import time

import pytest

from sipkit.mihu.createlock import create_lock, lock_path
from sipkit.mihu.errors import CreateLockBusy, CreateLockUnusable

URL = "https://user:tok_S3CRET@acme.mihu.ai/api"  # a URL with userinfo: still no secret on disk
RESOURCE = "trunk mihu phone_number +12084439178"


def test_the_file_name_is_a_hash_of_api_and_key(state_dir):
    path = lock_path(URL, RESOURCE)
    assert path.parent == state_dir / "create-locks"
    stem = path.name.removesuffix(".lock")
    assert len(stem) == 32 and set(stem) <= set("0123456789abcdef")
    for piece in ("S3CRET", "acme", "mihu", "12084439178", "user"):
        assert piece not in str(path.relative_to(state_dir))
    # the same API however written shares the lock; another API, or another key, does not
    assert lock_path("HTTPS://USER:tok_S3CRET@ACME.mihu.ai/api/", RESOURCE) == path
    assert lock_path("https://other.mihu.ai/api", RESOURCE) != path
    assert lock_path(URL, "trunk mihu phone_number +12084439179") != path
    assert lock_path(URL, "connector +12084439178") != path


def test_a_second_holder_waits_its_bound_then_names_the_first(state_dir):
    with create_lock(URL, RESOURCE, "the trunk for +1208", wait=1):
        start = time.monotonic()
        with pytest.raises(CreateLockBusy) as exc:
            with create_lock(URL, RESOURCE, "the trunk for +1208", wait=0.3):
                pass
        assert 0.3 <= time.monotonic() - start < 2
        # another API (or key) is not held up by this one
        with create_lock("https://other.mihu.ai/api", RESOURCE, "x", wait=0):
            pass
    msg = str(exc.value)
    assert exc.value.exit_code == 4
    assert f"sipkit process {os.getpid()}" in msg and "the trunk for +1208" in msg
    assert "Fix:" in msg and "S3CRET" not in msg
    with create_lock(URL, RESOURCE, "x", wait=0):  # released: free at once
        pass


def test_an_unusable_state_dir_refuses(state_dir, monkeypatch):
    blocker = state_dir / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SIPKIT_STATE_DIR", str(blocker / "sub"))  # under a file: even root fails
    with pytest.raises(CreateLockUnusable) as exc:
        with create_lock(URL, RESOURCE, "x", wait=1):
            pytest.fail("entered without the lock")
    assert exc.value.exit_code == 2 and "SIPKIT_STATE_DIR" in str(exc.value)
    assert str(blocker / "sub") in str(exc.value)
