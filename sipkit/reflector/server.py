"""Start the reflector: its SIP sockets, then the HTTPS API; serve until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal
import ssl

from aiohttp import web

from .app import Reflector
from .config import ReflectorConfig
from .requestlog import RequestLog
from .tokens import TokenBook


def tls_context(cfg: ReflectorConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cfg.tls_cert), str(cfg.tls_key))
    return ctx


async def serve(cfg: ReflectorConfig, ready=None) -> None:
    """Run until a signal arrives. ``ready(reflector)`` is called once everything listens."""
    log = RequestLog(cfg.request_log)
    reflector = Reflector(cfg, TokenBook.load(cfg.tokens), log)
    await reflector.sip.start()
    runner = web.AppRunner(reflector.app(), access_log=None)  # our own log holds no token
    await runner.setup()
    host, port = cfg.listen_hostport
    await web.TCPSite(runner, host, port, ssl_context=tls_context(cfg)).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.write(kind="start", api=cfg.listen, sip=reflector.sip.address)
    if ready is not None:
        ready(reflector)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await reflector.sip.stop()
        log.write(kind="stop")
        log.close()
