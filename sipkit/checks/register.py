"""register: the extension's credentials work, and what the path does to SIP.

Lockout safety (fail2ban, Kamailio pike, PBX "bad password" bans): one REGISTER without
credentials to read the challenge, then exactly ONE authenticated REGISTER. A second
authenticated request is sent only when the registrar has shown the password is right: after a
200 (to remove our binding), after ``stale=true`` (RFC 7616 §3.3: the digest was valid, only the
nonce aged), or after 423 (RFC 3261 §10.3: expiry is checked after authentication).

Afterwards only the Contact sipkit added is removed (Expires 0 on that URI; never ``*``).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Collection
from dataclasses import dataclass, field

from ..net.addresses import canonical_ip, hostport, parse_ip, uri_host
from ..report import CheckResult
from ..sip.digest import DigestError, authorization, parse_challenges, pick_strongest
from ..sip.errors import SipError
from ..sip.headers import leading_number
from ..sip.message import Request, Response
from ..sip.uri import SipUri, parse_name_addr
from ..sip.via import Via
from .base import CheckContext, Target
from .cloud import ServerLookup, lookup
from .sipio import Dialogless, open_target, server_of

ID = "register"
TITLE = "Registration"
DEPENDS = ("transport",)
KINDS = ("pbx_extension",)
NOT_FOR = {"sip_trunk": "a trunk's credentials are proven by the credentials check"}
REQUESTED_EXPIRES = 60
# A Min-Expires above a day is no interval anyone means: sipkit will not bind for that long.
MAX_MIN_EXPIRES = 86400


class _Flow:
    """One registration attempt against one target; collects facts for the report."""

    def __init__(self, ctx: CheckContext, conn, target: Target):
        ep = ctx.endpoint
        self.ctx, self.conn, self.target = ctx, conn, target
        self.d = Dialogless(conn, target, user=ep.username, domain=ep.sip_domain)
        self.auth_attempts = 0
        self.token = secrets.token_hex(4)
        lip, lport = conn.local[0], conn.local[1]
        # A URI parameter marks our binding, so un-register removes exactly this one.
        self.contact_uri = (f"sip:{ep.username}@{hostport(lip, lport)};"
                            f"transport={conn.transport};sipkit={self.token}")
        self.ruri = f"sip:{uri_host(ep.sip_domain)}" + (
            f":{ep.port}" if ep.port not in (None, 5060, 5061) else "")
        self.last_challenge = None
        self.nc = 0

    def request(self, expires: int, auth: tuple[str, str] | None = None) -> Request:
        extra = [auth] if auth else []
        return self.d.build("REGISTER", self.ruri, to_user=self.ctx.endpoint.username,
                            contact=f"<{self.contact_uri}>", expires=expires, extra=extra)

    def authorize(self, req_expires: int) -> Request:
        ch = self.last_challenge
        self.nc += 1
        ep = self.ctx.endpoint
        header = authorization(ch, method="REGISTER", uri=self.ruri, username=ep.digest_username,
                               password=ep.password.get_secret_value(), nc=self.nc)
        # Masked by value wherever the registrar echoes them (reason phrase, Warning:, ...).
        self.ctx.redactor.add_digest(header[1])
        return self.request(req_expires, header)

    async def send(self, req: Request):
        opts = self.ctx.options
        ex = await self.conn.request(req, timeout=opts.timeout, t1=opts.t1)
        if any(k.lower() in ("authorization", "proxy-authorization") for k, _ in req.headers.items()):
            self.auth_attempts += 1
        return ex


@dataclass(frozen=True)
class Bindings:
    """The Contacts of a 2xx to REGISTER (RFC 3261 §10.3 step 8: all the AOR's bindings), by
    whose they are."""

    ours: str | None = None  # sipkit's test binding, as the registrar has it
    ours_expires: int | None = None  # granted to it
    connector: list[str] = field(default_factory=list)  # the cloud's own (connector server)
    others: list[str] = field(default_factory=list)  # any other device's


def bindings(resp: Response, token: str, connector: Collection[str] = ()) -> Bindings:
    """Sort the registrar's Contacts: ours (the ``sipkit`` token), the connector server's
    (``connector``: its names and addresses, ``ServerLookup.names``), everyone else's."""
    ours = ours_expires = None
    cloud: list[str] = []
    others: list[str] = []
    default = resp.headers.get_int("Expires")
    for value in resp.headers.get_all("Contact"):
        try:
            na = parse_name_addr(value)
        except Exception:  # an odd Contact from the registrar is not our failure
            others.append(value)
            continue
        if na.uri.params.get("sipkit") == token:
            ours = str(na.uri)
            # The ASCII-digit rule: ";expires=²" is no number (RFC 3261 §10.2.4 delta-seconds).
            ours_expires = na.expires if na.expires is not None else default
        elif _hosts_of(na) & set(connector):
            cloud.append(str(na.uri))
        else:
            others.append(str(na.uri))
    return Bindings(ours, ours_expires, cloud, others)


def _hosts_of(na) -> set[str]:
    """The Contact's host and, where the registrar adds it (Kamailio/OpenSIPS ``received``
    after NAT fix-ups), the address the REGISTER came from."""
    hosts = {canonical_ip(na.uri.host).lower()}
    received = (na.params.get("received") or "").strip('"')
    if received:
        try:
            hosts.add(canonical_ip(SipUri.parse(received).host).lower())
        except SipError:
            pass
    return hosts


def _path_facts(sent: Request, resp: Response, local: tuple, contact_uri: str,
                registered_contact: str | None) -> dict:
    """NAT (RFC 3581 received/rport) and signs of a SIP ALG rewriting our messages. A Via the
    registrar garbled is itself a sign, never a reason to fail."""
    facts: dict = {"local": hostport(local[0], local[1])}
    sent_via = sent.top_via
    via_values = resp.headers.get_all("Via")
    try:
        got_via = Via.parse(via_values[0]) if via_values else None
    except SipError:
        facts["alg_signs"] = [f"the top Via came back unreadable: {via_values[0][:80]!r}"]
        return facts
    if got_via is not None:
        # received must be an address and rport a number (a bare ";rport" is no port).
        mine = canonical_ip(local[0])
        received = (canonical_ip(got_via.received)
                    if got_via.received and parse_ip(got_via.received) else mine)
        rport = got_via.rport_port or local[1]
        facts["seen_as"] = hostport(received, rport)
        facts["nat"] = received != mine or rport != local[1]
        alg = []
        if (got_via.host, got_via.port) != (sent_via.host, sent_via.port):
            alg.append(f"Via sent-by changed from {sent_via.host}:{sent_via.port} to "
                       f"{got_via.host}:{got_via.port}"[:200])
        if got_via.branch != sent_via.branch:
            alg.append("Via branch changed")
        if len(via_values) != 1:
            alg.append(f"{len(via_values)} Via headers came back, 1 was sent")
        if registered_contact is not None:
            want = _hostport(contact_uri)
            have = _hostport(registered_contact)
            if want != have:
                alg.append(f"Contact rewritten from {want} to {have}")
        facts["alg_signs"] = alg
    return facts


def _hostport(uri: str) -> str:
    try:
        u = SipUri.parse(uri)
    except SipError:
        return uri[:80]
    return f"{u.host}:{u.port}"


def _challenge_facts(challenges) -> dict:
    return {"realm": challenges[0].realm,
            "algorithms": sorted({c.algorithm or "MD5" for c in challenges}),
            "qop": sorted({q for c in challenges for q in c.qop}),
            "header": challenges[0].header}


async def attempt(ctx: CheckContext, target: Target) -> CheckResult:
    """The registration flow against one target: the public core the probers share."""
    ep = ctx.endpoint
    async with open_target(ctx, target, verify=False) as conn:
        flow = _Flow(ctx, conn, target)
        details: dict = {"target": target.as_dict(), "digest_username": ep.digest_username,
                         "requested_expires": REQUESTED_EXPIRES}

        def done(status, summary, hint=None, **more):
            details["authenticated_attempts"] = flow.auth_attempts
            details.update(more)
            return ctx.result(status, summary, hint, **details)

        # 1. no credentials: expect a challenge
        first_req = flow.request(REQUESTED_EXPIRES)
        ex = await flow.send(first_req)
        if ex.final is None:
            return done("fail", f"no final answer to REGISTER ({'1xx only' if ex.provisionals else 'timeout'})",
                        "the PBX answers OPTIONS but not REGISTER: check it allows registrations "
                        "on this transport and from this address")
        resp = ex.final
        details["unauthenticated_status"] = resp.status
        details["server"] = server_of(resp)
        if resp.status in (401, 407):
            try:
                challenges = parse_challenges(resp)
                flow.last_challenge = pick_strongest(challenges)
            except DigestError as exc:
                return done("fail", f"the registrar's challenge is unusable: {exc}",
                            "the PBX offers a digest algorithm sipkit and the cloud connector "
                            "do not support; enable MD5 or SHA-256")
            details["challenge"] = _challenge_facts(challenges)
            details["challenge"]["chosen_algorithm"] = flow.last_challenge.algorithm or "MD5"
        elif 200 <= resp.status < 300:
            await _unregister_anyway(ctx, flow, target)
            return done("warn", "the registrar accepted REGISTER without any credentials",
                        "the PBX registers anyone to this extension: require authentication")
        else:
            return _classify_failure(done, resp, ep, before_auth=True)

        # 2. exactly one authenticated REGISTER
        req = flow.authorize(REQUESTED_EXPIRES)
        ex = await flow.send(req)
        resp = ex.final
        retried = None
        if resp is not None and resp.status in (401, 407):
            stale, why = _stale_challenge(resp)
            if why:  # no usable challenge: the credentials were refused, say so
                details["challenge_after_auth"] = why
            if stale is not None:  # the password was right; only the nonce aged
                flow.last_challenge = stale
                retried = "stale nonce"
                req = flow.authorize(REQUESTED_EXPIRES)
                ex = await flow.send(req)
                resp = ex.final
        if resp is not None and resp.status == 423:
            # RFC 3261 §10.3 step 7: expiry is checked after authentication, so the password
            # is proven; retry once, only with a sane minimum above what was asked.
            minimum = resp.headers.get_int("Min-Expires")
            if minimum is not None and details["requested_expires"] < minimum <= MAX_MIN_EXPIRES:
                retried = f"423: Min-Expires {minimum}"
                req = flow.authorize(minimum)
                details["requested_expires"] = minimum
                ex = await flow.send(req)
                resp = ex.final
            else:
                details["min_expires"] = (resp.headers.get("Min-Expires") or "")[:40] or None
        if retried:
            details["retried"] = retried
        if resp is None:
            return done("fail", "no answer to the authenticated REGISTER",
                        "the PBX went silent after the credentials: it may have banned this "
                        "address (fail2ban / pike); wait and check its security log")
        details["final_status"] = resp.status
        if not 200 <= resp.status < 300:
            why = details.get("challenge_after_auth") or ""
            if why.startswith("stale=true") and resp.status in (401, 407):
                return done("fail", f"the registrar answered nonsense: {why}",
                            "the PBX said the password was right (stale nonce) but offered no "
                            "digest algorithm to retry with that sipkit supports; enable MD5 "
                            "or SHA-256 on it")
            return _classify_failure(done, resp, ep, before_auth=False)

        # Our binding exists from here on: whatever happens next (a garbled answer, an
        # exception, a timeout, Ctrl-C / cancellation), it is removed on the way out.
        ctx.facts.registered = True
        removed = None
        try:
            found = bindings(resp, flow.token)
            expires = found.ours_expires
            # Another binding may be the cloud's own: where the connector server is, is
            # looked up (once a run, shared with allowed_ip) while ours is removed.
            server = lookup(ctx) if found.others and ctx.kind == "pbx_extension" else None
            path = _path_facts(req, resp, conn.local, flow.contact_uri, found.ours)
            try:
                removed = await _unregister(flow, expires)
            except (OSError, TimeoutError, SipError):  # retried below, on a new connection
                pass
        finally:
            if not removed:
                removed = await _unregister_anyway(ctx, flow, target, tried=removed is False)
        ctx.facts.seen_as = path.get("seen_as")
        found, whose = await _with_connector(ctx, resp, flow.token, found, server)
        others = found.others
        summary = (f"registered {ep.digest_username}@{uri_host(ep.sip_domain)} "
                   f"(realm {details['challenge']['realm']}, "
                   f"{details['challenge']['chosen_algorithm']}); granted "
                   f"{expires if expires is not None else '?'} s")
        more = {"granted_expires": expires, "other_bindings": others,
                "connector_bindings": found.connector, **whose, "unregistered": removed, **path}
        if path.get("nat"):
            summary += f"; NAT: the PBX sees {path['seen_as']}"
        if found.connector:  # the cloud registers the extension once the connector exists
            summary += (f"; also bound: the connector's own registration (cloud, "
                        f"{whose['connector_server']})")
        warns = []
        if path.get("alg_signs"):
            warns.append(("SIP ALG suspected: " + "; ".join(path["alg_signs"]),
                          "disable the SIP ALG / SIP helper on the router or firewall between "
                          "this site and the PBX"))
        if others:
            warns.append((f"extension {ep.username} has {len(others)} other "
                          "registered device(s)",
                          "calls to this extension will also ring those devices: give the "
                          "connector an extension of its own"))
        if expires is not None and expires < 60:
            warns.append((f"the registrar grants only {expires} s", "allow at least 60 s"))
        if not removed:
            lasts = f"{expires} s" if expires is not None else "its expiry"
            warns.append(("could not remove sipkit's test binding",
                          f"it expires by itself in {lasts}"))
        if warns:
            return done("warn", summary + "; " + "; ".join(w[0] for w in warns),
                        "; ".join(w[1] for w in warns), **more)
        return done("pass", summary, **more)


async def _with_connector(ctx: CheckContext, resp: Response, token: str, found: Bindings,
                          server: asyncio.Future | None) -> tuple[Bindings, dict]:
    """``found`` with the connector server's bindings told apart (they are no other device),
    and what the details say about the connector server. Waits at most --timeout for the
    lookup: without it every other binding stays another device's, as before."""
    if server is None:
        return found, {}
    try:
        got = await asyncio.wait_for(asyncio.shield(server), ctx.options.timeout)
    except TimeoutError:
        got = ServerLookup(None, "api", "the connector server lookup did not finish in time")
    except ValueError as exc:  # an address the API gave that is no host[:port]
        got = ServerLookup(None, "api", f"the connector server's address is unusable: {exc}")
    if got.target is None:
        return found, {"connector_server_unknown": got.reason}
    return bindings(resp, token, got.names), {"connector_server": got.target.host}


def _stale_challenge(resp: Response):
    """(the challenge to retry with, why none) for a 401/407 to the authenticated REGISTER.
    A retry only on ``stale=true`` (RFC 7616 §3.3) and only with a challenge sipkit can
    answer: a stale SHA-1, AKAv1-MD5 or ``ＭＤ５`` one is not chosen."""
    try:
        challenges = parse_challenges(resp)
    except DigestError as exc:
        return None, str(exc)
    stale = [c for c in challenges if c.stale]
    if not stale:
        return None, None
    try:
        return pick_strongest(stale), None
    except DigestError as exc:
        return None, f"stale=true, but {exc}"


async def _unregister(flow: _Flow, expires: int | None) -> bool:
    """Expires 0 on our Contact only. The password is known good here."""
    if flow.last_challenge is None:
        req = flow.request(0)
    else:
        req = flow.authorize(0)
    ex = await flow.send(req)
    if ex.final is not None and ex.final.status in (401, 407):
        try:
            flow.last_challenge = pick_strongest(parse_challenges(ex.final))
        except DigestError:
            return False
        ex = await flow.send(flow.authorize(0))
    return ex.final is not None and 200 <= ex.final.status < 300


async def _unregister_anyway(ctx: CheckContext, flow: _Flow, target: Target,
                             tried: bool = False) -> bool:
    """The binding must go even when the run is failing: on the same connection (unless
    that was ``tried`` and got no 2xx), else, on a stream the peer closed, on a new one with
    the same Call-ID and CSeq run (RFC 3261 §10.2.4). Never raises: it runs in a ``finally``,
    where the original exception must survive."""
    try:
        if not flow.conn.closed and not tried:
            return await _unregister(flow, None)
    except Exception:  # noqa: BLE001 - the real error is the one being raised already
        pass
    if not flow.conn.closed:  # it answered, or stayed silent, on a live connection
        return False
    if flow.conn.transport == "udp":
        return False
    try:
        async with open_target(ctx, target, verify=False) as conn:
            old = flow.d
            flow.conn = conn
            flow.d = Dialogless(conn, target, user=ctx.endpoint.username,
                                domain=ctx.endpoint.sip_domain)
            flow.d.call_id, flow.d.tag, flow.d.cseq = old.call_id, old.tag, old.cseq
            return await _unregister(flow, None)
    except Exception:  # noqa: BLE001 - as above; the binding then expires by itself
        return False


def _classify_failure(done, resp: Response, ep, before_auth: bool) -> CheckResult:
    code = f"{resp.status} {resp.reason}"
    who = f"{ep.digest_username}@{uri_host(ep.sip_domain)}"
    if resp.status in (401, 407):
        return done("fail", f"{code} again after authenticating: wrong password or realm for {who}",
                    "check pbx_password (and auth_username if the PBX uses a separate auth "
                    "name); sipkit stopped after one attempt so the site is not banned")
    if resp.status == 403:
        return done("fail", f"{code}: the PBX refused {who}"
                    + (" before authentication (address or policy)" if before_auth else
                       " — wrong password, unknown extension, or auth name not allowed"),
                    "check username_extension and pbx_password on the PBX; if they are right, "
                    "check the PBX allows registrations from this address"
                    + ("" if before_auth else "; sipkit stopped after one attempt"))
    if resp.status == 404:
        return done("fail", f"{code}: extension {ep.username} does not exist on "
                    f"{ep.sip_domain}",
                    "create the extension on the PBX, or fix username_extension / the domain")
    if resp.status in (429, 503):
        after = leading_number(resp.headers.get("Retry-After"))
        return done("fail", f"{code}: the PBX is rate-limiting or overloaded"
                    + (f" (Retry-After {after} s)" if after else ""),
                    "wait and retry later; too many attempts from this address may be banned")
    if resp.status == 423:
        return done("fail", f"{code}: expiry too brief even after retrying with Min-Expires",
                    "check the PBX's minimum registration interval")
    return done("fail", f"REGISTER answered {code}",
                "see the SIP exchange with -v; the PBX does not accept this registration")


async def run(ctx: CheckContext) -> CheckResult:
    targets = [t for t in ctx.answering_targets]
    if not targets:
        return ctx.result("skip", "no address answered in the transport check")
    try:
        return await attempt(ctx, targets[0])
    except (TimeoutError, ConnectionError, OSError) as exc:
        return ctx.result("fail", f"connection lost during REGISTER: {exc or type(exc).__name__}",
                          "re-run; if it repeats, the PBX or a firewall cuts the connection")
    except SipError as exc:  # the registrar's fault, not sipkit's: a verdict, not an error
        return ctx.result("fail", f"the registrar answered nonsense: {str(exc)[:200]}",
                          "see the SIP exchange with -v; the PBX (or something on the path) "
                          "sends malformed SIP")
