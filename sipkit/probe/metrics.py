"""Prometheus text for one probe (blackbox_exporter style: only this probe's series).

Written directly in the text exposition format (version 0.0.4) rather than through a fresh
``prometheus_client`` registry per scrape, which cost more than the probe itself. The metric
set is the prober's own (``probers.PROBERS[kind].metrics``) after the common two.
"""

from __future__ import annotations

from .probers import PROBERS, ProbeResult

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_COMMON = (("sip_probe_success", "1 if the probe succeeded", "success"),
           ("sip_probe_duration_seconds", "How long the probe took", "duration_s"))


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value) -> str:
    if value is True or value is False:
        return "1" if value else "0"
    return repr(float(value))


def render(res: ProbeResult, prober: str) -> bytes:
    out = []
    for name, doc, attr in _COMMON + PROBERS[prober].metrics:
        value = getattr(res, attr)
        if value is not None:
            out.append(f"# HELP {name} {doc}\n# TYPE {name} gauge\n{name} {_number(value)}\n")
    if res.reason:
        # why, for the alert's description (one series per probe: a fresh label set is fine)
        out.append("# HELP sip_probe_info The probe's outcome in words\n"
                   "# TYPE sip_probe_info gauge\n"
                   f'sip_probe_info{{reason="{_label(res.reason[:200])}"}} 1\n')
    return "".join(out).encode()
