"""Fleet health probes: modules in YAML (like blackbox_exporter's), one prober per kind, each
reusing the checks; a Prometheus exporter, a batch runner, and a Nagios mode."""
