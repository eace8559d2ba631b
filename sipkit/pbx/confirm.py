"""One OPTIONS to tell a ban from a REGISTER-only silence.

Within one run "OPTIONS answered, then a REGISTER never was" fits both a source ban and a PBX
that ignores REGISTER from this address (a policy, not a ban). After the checks, when the
ban detector saw a silence, sipkit sends one OPTIONS from the same address over the same
transport: unanswered too means the whole address is dropped (a ban); answered means only that
kind of request is (the check's own verdict, with its brand text, stands). One request more,
only in that case; it goes through the run's tap, so it is counted in requests_sent.
"""

from __future__ import annotations

import ssl

from .. import __version__
from ..net.addresses import hostport, uri_host
from ..net.transport import connect
from ..sip.builder import build_request, new_call_id, new_tag
from .ban import BanFinding
from .requestlog import RequestLog


async def still_silent(finding: BanFinding, log: RequestLog, timeout: float,
                       t1: float = 0.5) -> bool | None:
    """True: the OPTIONS got no answer either; False: it was answered; None: not sent."""
    first = finding.first
    sslctx = None
    if first.transport == "tls":
        sslctx = ssl.create_default_context()
        sslctx.check_hostname = False
        sslctx.verify_mode = ssl.CERT_NONE  # reachability, not trust: the tls check audits
    try:
        conn = await connect(finding.remote, first.remote_port, first.transport,
                             local_ip=finding.local, ssl_context=sslctx, timeout=timeout,
                             tap=log.tap)
    except (OSError, TimeoutError):
        return True  # cannot even connect from this address any more
    try:
        lip, lport = conn.local[0], conn.local[1]
        uri = f"sip:{hostport(finding.remote, first.remote_port)}"
        req = build_request("OPTIONS", uri, from_uri=f"sip:sipkit@{uri_host(lip)}", to_uri=uri,
                            call_id=new_call_id(lip), cseq=1, via_host=lip, via_port=lport,
                            transport=first.transport.upper(), from_tag=new_tag(),
                            user_agent=f"sipkit/{__version__}")
        ex = await conn.request(req, timeout=timeout, t1=t1)
    except (OSError, TimeoutError):
        return None
    finally:
        await conn.close()
    return ex.final is None
