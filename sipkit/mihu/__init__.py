"""The Mihu PBX-extension-connector API: client (httpx), models, errors, idempotent provisioning."""
