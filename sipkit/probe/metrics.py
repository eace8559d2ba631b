"""Prometheus text for one probe, from a fresh registry per request (blackbox_exporter style)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from .probers import ProbeResult


def render(res: ProbeResult) -> bytes:
    reg = CollectorRegistry()

    def gauge(name: str, doc: str, value) -> None:
        if value is not None:
            Gauge(name, doc, registry=reg).set(float(value))

    gauge("sip_probe_success", "1 if the probe succeeded", 1 if res.success else 0)
    gauge("sip_probe_duration_seconds", "How long the probe took", res.duration_s)
    gauge("sip_probe_status_code", "Final SIP status code of the probe's request", res.status_code)
    gauge("sip_probe_rtt_seconds", "Request to first response", res.rtt_s)
    gauge("sip_probe_dns_lookup_seconds", "Time spent resolving the target", res.dns_lookup_s)
    gauge("sip_probe_tls_cert_not_after", "Certificate expiry, Unix time", res.tls_not_after)
    gauge("sip_probe_tls_cert_days_left", "Days until the certificate expires", res.tls_days_left)
    gauge("sip_probe_register_expires_seconds", "Registration lifetime the registrar granted",
          res.register_expires_s)
    gauge("sip_probe_register_backoff_seconds", "Seconds until the next authenticated attempt "
          "is allowed (lockout safety)", res.backoff_s)
    return generate_latest(reg)
