"""The Mihu API: client (httpx), models, errors, idempotent provisioning of PBX extension
connectors and of SIP trunks (the two Mihu trunk APIs and the /sip-trunks API of seed 003)."""
