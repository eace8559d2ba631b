"""Sans-IO SIP: bytes in, messages out; no sockets, no asyncio, nothing else of sipkit."""
