"""The checks, one module each, with one signature (see base.py).

``REGISTRY`` lists them in report order. Modules load lazily so a run imports only what it uses.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# id -> module name. Order is the order of the report.
REGISTRY: dict[str, str] = {
    "config": "config",
    "dns": "dns",
    "transport": "transport",
    "tls": "tls",
    "register": "register",
    "credentials": "credentials",
    "secondary_gateway": "secondary_gateway",
    "outside_reach": "outside_reach",
    "sip_alg": "sip_alg",
    "nat_binding": "nat_binding",
    "allowed_ip": "allowed_ip",
    "normalizer": "normalizer",
    "call_inbound": "call_inbound",
    "call_outbound": "call_outbound",
    "trunk_call": "trunk_call",
}


# After creation (`sipkit verify`, the last step of `check --create`): the real path through
# the PBX to and from the created connector. A group of its own: a plain `check` never runs
# them (they need the connector, the cloud and check.test_extension).
VERIFY: dict[str, str] = {
    "cloud_registration": "cloud_registration",
    "call_via_pbx_inbound": "call_via_pbx_inbound",
    "call_via_pbx_outbound": "call_via_pbx_outbound",
}


def load(check_id: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{(REGISTRY | VERIFY)[check_id]}")


def dependencies(check_id: str) -> tuple[str, ...]:
    return tuple(load(check_id).DEPENDS)
