"""Every exit code sipkit returns, in one table (the README's table is written from it)."""

from __future__ import annotations

OK, FAILED, USAGE, INTERNAL, API_DOWN, INTERRUPTED = 0, 1, 2, 3, 4, 130

MEANING = {
    OK: "done: no check failed (warnings allowed), or the API call succeeded",
    FAILED: "a check failed (--strict: or warned), or nothing was verified (every selected "
            "check skipped, e.g. --skip config); the API refused (exists with other settings, "
            "not found, in use); a lab peer is down",
    USAGE: "bad usage, settings or credentials: the message names the field and the fix",
    INTERNAL: "sipkit itself broke (a check ended in error): please report it",
    API_DOWN: "the Mihu API could not be reached or kept failing: retry later",
    INTERRUPTED: "interrupted (Ctrl-C): test bindings removed, calls hung up",
}

# What each command can return. A test asserts the README lists exactly these.
BY_COMMAND: dict[str, tuple[int, ...]] = {
    "init": (OK, FAILED, USAGE, INTERNAL, API_DOWN),
    "check": (OK, FAILED, USAGE, INTERNAL, API_DOWN, INTERRUPTED),
    "verify": (OK, FAILED, USAGE, INTERNAL, API_DOWN, INTERRUPTED),
    "connector": (OK, FAILED, USAGE, INTERNAL, API_DOWN, INTERRUPTED),
    "server": (OK, FAILED, USAGE, INTERNAL, API_DOWN, INTERRUPTED),
    "trunk": (OK, FAILED, USAGE, INTERNAL, API_DOWN, INTERRUPTED),
    "normalize": (OK, FAILED, USAGE, INTERNAL),
    "analyze": (OK, FAILED, USAGE, INTERNAL),
    "lab": (OK, FAILED, USAGE, INTERNAL),
    # a monitoring plugin: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (its own meanings)
    "nagios": (OK, FAILED, USAGE, INTERNAL),
}
