"""sipkit: SIP/PBX connectivity checks, Mihu connector creation, and fleet probes."""

__version__ = "0.1.0"
