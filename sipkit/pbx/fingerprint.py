"""Who the PBX is, from what it already told us: pure, no I/O.

Input: the final responses of one run to one PBX (``RequestLog``), as written on the wire.
Signals, strongest first:

* ``Server`` / ``User-Agent`` (the product's own banner; many admins blank it);
* the digest challenge's style: realm, nonce format, ``algorithm`` casing, ``qop``, ``opaque``,
  and whether REGISTER is challenged with 401 or 407;
* the exact ``Allow`` / ``Supported`` lists (compiled into each stack, in its own order);
* vendor headers (``X-Grandstream-PBX``).

Each rule has a weight; a brand's score is 1 - Π(1 - w) over its matched rules, so independent
signals add up and one strong signal is enough. The banner decides the version. Observed values
come from public captures and tools (cited beside each rule); the few banners assumed from a
product's naming, with no capture found, are marked so. A product with no known signal other
than its banner is only recognised by its banner. Reason phrases and header order/casing are
recorded (``reasons``, ``header_order``) but not scored: no sourced per-product rule exists
for them yet.

A Kamailio / OpenSIPS banner with another product's challenge style is a front end: the
fingerprint names the product behind it and the proxy as ``front_end``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .requestlog import RequestLog

# brand key -> display name (the knowledge base uses the same keys)
BRANDS: dict[str, str] = {
    "freepbx": "FreePBX",
    "asterisk": "Asterisk",
    "issabel": "Issabel",
    "3cx": "3CX",
    "yeastar": "Yeastar",
    "grandstream": "Grandstream UCM",
    "cucm": "Cisco Unified CM",
    "avaya": "Avaya IP Office",
    "mitel": "Mitel MiVoice Business",
    "freeswitch": "FreeSWITCH / FusionPBX",
    "kamailio": "Kamailio",
    "opensips": "OpenSIPS",
}
FRONT_ENDS = ("kamailio", "opensips")
# Asterisk-based products: an Asterisk challenge style is consistent with any of them.
ASTERISK_FAMILY = ("freepbx", "asterisk", "issabel", "grandstream", "yeastar")

# Allow lists compiled into each stack (the exact order is the fingerprint).
# chan_sip ALLOWED_METHODS (Asterisk channels/chan_sip.c; captures "Asterisk PBX 10.11.1");
# FreeSWITCH mod_sofia (captures of "FreeSWITCH-mod_sofia/1.8.5" .. "1.10.12").
ALLOW_CHAN_SIP = re.compile(r"^INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, SUBSCRIBE, NOTIFY, INFO"
                            r"(, PUBLISH)?(, MESSAGE)?$")
ALLOW_SOFIA = re.compile(r"^INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, UPDATE, REGISTER, "
                         r"REFER, NOTIFY(, PUBLISH, SUBSCRIBE)?$")
# res_pjsip: the loaded modules' methods, OPTIONS first (captures of "Asterisk PBX 14.7.7",
# "FPBX-16.0.33(18.13.0)", Wazo; REGISTER sits 2nd or after PRACK depending on load order).
ALLOW_PJSIP = re.compile(r"^OPTIONS, (REGISTER, )?SUBSCRIBE, NOTIFY, PUBLISH, INVITE, ACK, BYE, "
                         r"CANCEL, UPDATE, PRACK\b")
# CUCM (captures of "Cisco-CUCM10.5" .. "12.5").
ALLOW_CUCM = re.compile(r"^INVITE, OPTIONS, INFO, BYE, CANCEL, ACK, PRACK, UPDATE, REFER, "
                        r"SUBSCRIBE, NOTIFY$")
# Supported lists from the same captures.
SUPPORTED = {"100rel, timer, replaces, norefersub": ("asterisk", "chan_pjsip"),
             "replaces, timer": ("asterisk", "chan_sip"),
             "timer, path, replaces": ("freeswitch", None)}


@dataclass(frozen=True)
class Banner:
    brand: str
    pattern: re.Pattern
    product: str | None = None  # fixed product line, or taken from the "product" group
    weight: float = 0.9


# Server / User-Agent banners. Order matters: the first match wins (FreePBX's banner also
# names Asterisk). Sources: 3CX "3CXPhoneSystem 11.0.28976.849 (28862)" (public 407 capture);
# FreePBX "FPBX-16.0.33(18.15.0)" (FreePBX sets user_agent; sippts fingerprinting matches
# "FPBX"); FreeSWITCH "FreeSWITCH-mod_sofia/1.10.12-release~64bit"; Cisco "Cisco-CUCM12.5";
# Yeastar "Yeastar S50", "Yeastar S20-65.16.0.183" (captures; the model names the line);
# Kamailio "kamailio (5.6.3 (x86_64/linux))". Assumed from product naming, no capture found:
# Grandstream "Grandstream UCM6302V1.3A 1.0.11.10", Avaya "IP Office 11.1.3.0.0 build 10",
# Mitel "Mitel-3300-ICP 14.0.3.22", Issabel "Issabel PBX 4.0".
BANNERS: tuple[Banner, ...] = (
    Banner("freepbx", re.compile(r"\bFPBX-(?P<version>[\w.]+)(?:\((?P<asterisk>[\w.\-~]+)\))?")),
    Banner("issabel", re.compile(r"\bIssabel(?:\s*PBX)?[\s/]*(?P<version>[\d.]+)?", re.I)),
    Banner("asterisk", re.compile(r"\bAsterisk(?:\s*PBX)?[\s/]*(?P<version>[\w.\-~]+)?", re.I)),
    Banner("3cx", re.compile(r"\b3CX(?:\s*Phone\s*System)?\s*(?P<version>[\d.]+)?", re.I)),
    Banner("yeastar", re.compile(r"\bYeastar\s*(?P<product>[PSK]\d+|[PSK]-?Series|Cloud\s*PBX)?"
                                 r"[-\s/]*(?P<version>[\d.]+)?", re.I)),
    Banner("yeastar", re.compile(r"\bMyPBX\s*(?P<version>[\d.]+)?", re.I), product="MyPBX"),
    Banner("grandstream", re.compile(r"\bGrandstream\s+(?P<product>UCM\d+)(?:V[\w.]+)?"
                                     r"(?:\s+(?P<version>[\d.]+))?", re.I)),
    Banner("cucm", re.compile(r"\bCisco-CUCM\s*(?P<version>[\d.]+)?", re.I)),
    Banner("avaya", re.compile(r"\b(?:Avaya\s+)?IP\s*Office\s*(?P<version>[\d.]+)?", re.I)),
    Banner("mitel", re.compile(r"\bMitel[- ](?P<product>3300[- ]ICP|MiVoice[- ]?\w*|MCD)"
                               r"[\s/]*(?P<version>[\d.]+)?", re.I)),
    Banner("freeswitch", re.compile(r"\bFusionPBX[\s/]*(?P<version>[\d.]+)?", re.I),
           product="FusionPBX"),
    Banner("freeswitch", re.compile(r"\bFreeSWITCH(?:-mod_sofia)?[\s/]*(?P<version>[\w.\-~]+)?",
                                    re.I)),
    Banner("kamailio", re.compile(r"\bkamailio\s*(?:\((?P<version>[\d.]+))?", re.I)),
    Banner("opensips", re.compile(r"\bOpenSIPS\s*(?:\((?P<version>[\d.]+))?", re.I)),
)


def _product_line(brand: str, product: str | None) -> str | None:
    """Yeastar's banner names the model (S50, P560): the line is what the menus follow."""
    if brand == "yeastar" and product and re.fullmatch(r"[PSK]\d+", product, re.I):
        return f"{product[0].upper()}-Series"
    if brand == "yeastar" and product and re.fullmatch(r"[PSK]Series", product, re.I):
        return f"{product[0].upper()}-Series"
    return product


@dataclass
class Challenge:
    header: str  # WWW-Authenticate or Proxy-Authenticate, as spelt
    status: int  # 401 or 407
    realm: str | None
    nonce: str | None
    algorithm: str | None  # as spelt (casing is a signal)
    qop: str | None
    opaque: bool
    params_order: list[str]


@dataclass
class Observation:
    """What the PBX told, reduced to the signals the rules read."""

    server: str | None = None
    allow: str | None = None
    supported: str | None = None
    challenge: Challenge | None = None
    reasons: list[tuple[int, str]] = field(default_factory=list)
    header_names: list[str] = field(default_factory=list)  # first answer, as spelt, in order
    vendor_headers: list[str] = field(default_factory=list)


@dataclass
class Fingerprint:
    brand: str  # a BRANDS key
    name: str
    confidence: float
    product: str | None = None
    version: str | None = None
    front_end: str | None = None  # kamailio / opensips seen in front of the PBX
    evidence: list[str] = field(default_factory=list)
    alternatives: list[dict[str, Any]] = field(default_factory=list)
    # the first answer's header names as spelt, in order: recorded for support, not scored
    # (no sourced per-product rule for order or casing yet)
    header_order: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        parts = [self.name]
        if self.product and self.product.lower() not in self.name.lower():
            parts.append(self.product)
        if self.version:
            parts.append(self.version)
        text = " ".join(parts)
        if self.front_end:
            text += f" behind {BRANDS[self.front_end]}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"brand": self.brand, "name": self.name, "product": self.product,
                "version": self.version, "front_end": self.front_end,
                "confidence": round(self.confidence, 2), "label": self.label,
                "evidence": list(self.evidence), "alternatives": list(self.alternatives),
                "header_order": list(self.header_order)}


# -- observation ------------------------------------------------------------------------
_PARAM = re.compile(r'([A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')


def parse_challenge(header: str, value: str, status: int) -> Challenge:
    body = re.sub(r"^\s*Digest\s+", "", value, flags=re.I)
    params: dict[str, str] = {}
    order: list[str] = []
    for name, raw in _PARAM.findall(body):
        key = name.lower()
        order.append(key)
        params.setdefault(key, raw[1:-1] if raw.startswith('"') else raw)
    return Challenge(header=header, status=status, realm=params.get("realm"),
                     nonce=params.get("nonce"), algorithm=params.get("algorithm"),
                     qop=params.get("qop"), opaque="opaque" in params, params_order=order)


def observe(log: RequestLog, remote: str | None = None) -> Observation:
    """The signals from every answer the PBX (``remote``, default: the most answering peer)
    gave in this run."""
    answers = log.answers()
    if remote is None and answers:
        counts: dict[str, int] = {}
        for sent, _ in answers:
            counts[sent.remote] = counts.get(sent.remote, 0) + 1
        remote = max(counts, key=counts.get)
    obs = Observation()
    for sent, ans in answers:
        if sent.remote != remote:
            continue
        obs.reasons.append((ans.status, ans.reason))
        if not obs.header_names:
            obs.header_names = [n for n, _ in ans.headers]
        for name, value in ans.headers:
            low = name.lower()
            if low in ("server", "user-agent") and obs.server is None and value:
                obs.server = value
            elif low == "allow" and obs.allow is None:
                obs.allow = value
            elif low in ("supported", "k") and obs.supported is None:
                obs.supported = value
            elif low in ("www-authenticate", "proxy-authenticate") and obs.challenge is None \
                    and value.lower().startswith("digest") and sent.method == "REGISTER":
                obs.challenge = parse_challenge(name, value, ans.status)
            elif low.startswith("x-grandstream") and name not in obs.vendor_headers:
                obs.vendor_headers.append(name)
    return obs


# -- rules ------------------------------------------------------------------------------
@dataclass
class _Score:
    weights: list[float] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    product: str | None = None
    version: str | None = None

    def add(self, weight: float, why: str) -> None:
        self.weights.append(weight)
        self.evidence.append(why)

    @property
    def value(self) -> float:
        miss = 1.0
        for w in self.weights:
            miss *= 1.0 - w
        return 1.0 - miss


def _challenge_rules(ch: Challenge, add) -> None:
    """Challenge styles. Sources: 3CX answers REGISTER with 407 Proxy-Authenticate
    'Digest nonce="414d535c…:…",algorithm=MD5,realm="3CXPhoneSystem"' (public captures;
    sippts matches realm="3CXPhoneSystem"); CUCM's realm is the SIP Station Realm service
    parameter, default "ccmsipline" (Cisco CUCM security guide); Asterisk's default realm is
    "asterisk" (pjsip default_realm / chan_sip realm; sippts matches it); chan_pjsip nonces are
    "<epoch>/<md5 hex>" with algorithm=md5 and qop="auth"; chan_sip nonces are 8 hex digits with
    no qop; FreeSWITCH nonces are UUIDs with algorithm=MD5, qop="auth" (public captures)."""
    realm = (ch.realm or "").strip()
    nonce = ch.nonce or ""
    if realm == "3CXPhoneSystem":
        add("3cx", 0.8, 'realm "3CXPhoneSystem"')
    if ch.status == 407 and re.fullmatch(r"[0-9a-f]{18}:[0-9a-f]{32}", nonce):
        add("3cx", 0.6, "407 challenge to REGISTER with a 3CX-style nonce")
    if realm == "ccmsipline":
        add("cucm", 0.8, 'realm "ccmsipline" (the CUCM SIP Station Realm default)')
    if realm.lower() == "asterisk":
        add("asterisk", 0.6, 'realm "asterisk" (the Asterisk default)')
    if re.fullmatch(r"\d{9,11}/[0-9a-f]{32}", nonce):
        add("asterisk", 0.6, "chan_pjsip nonce style (<time>/<md5>)", product="chan_pjsip")
    elif re.fullmatch(r"[0-9a-f]{8}", nonce) and not ch.qop:
        add("asterisk", 0.5, "chan_sip nonce style (8 hex digits, no qop)", product="chan_sip")
    if re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", nonce):
        add("freeswitch", 0.5, "UUID nonce (FreeSWITCH style)")


def _scores(obs: Observation) -> tuple[dict[str, _Score], dict[str, _Score]]:
    """(product scores, front-end scores)."""
    scores: dict[str, _Score] = {}

    def add(brand: str, weight: float, why: str, product: str | None = None,
            version: str | None = None) -> None:
        s = scores.setdefault(brand, _Score())
        s.add(weight, why)
        s.product = s.product or product
        s.version = s.version or version

    if obs.server:
        for b in BANNERS:
            m = b.pattern.search(obs.server)
            if m is None:
                continue
            groups = m.groupdict()
            product = b.product or _product_line(b.brand, groups.get("product"))
            add(b.brand, b.weight, f"banner {obs.server!r}", product=product,
                version=groups.get("version"))
            if groups.get("asterisk"):
                add(b.brand, 0.0, f"Asterisk {groups['asterisk']} underneath")
            break
    if obs.challenge is not None:
        _challenge_rules(obs.challenge, add)
    if obs.allow:
        allow = re.sub(r"\s*,\s*", ", ", obs.allow.strip())
        if ALLOW_CHAN_SIP.match(allow):
            add("asterisk", 0.4, "Allow list of chan_sip", product="chan_sip")
        elif ALLOW_PJSIP.match(allow):
            add("asterisk", 0.4, "Allow list of res_pjsip", product="chan_pjsip")
        elif ALLOW_SOFIA.match(allow):
            add("freeswitch", 0.4, "Allow list of FreeSWITCH mod_sofia")
        elif ALLOW_CUCM.match(allow):
            add("cucm", 0.4, "Allow list of Cisco CUCM")
    if obs.supported:
        hit = SUPPORTED.get(re.sub(r"\s*,\s*", ", ", obs.supported.strip()))
        if hit:
            add(hit[0], 0.3, f"Supported list {obs.supported!r}", product=hit[1])
        elif "x-cisco-" in obs.supported.lower():
            add("cucm", 0.5, f"Supported list {obs.supported!r} (X-cisco options)")
    if obs.vendor_headers:
        add("grandstream", 0.6, f"vendor header {obs.vendor_headers[0]}")
    front = {k: scores.pop(k) for k in FRONT_ENDS if k in scores}
    return scores, front


def _merge_asterisk_family(scores: dict[str, _Score]) -> None:
    """An Asterisk-style challenge behind a FreePBX / Issabel / UCM / Yeastar banner confirms
    that product (they run Asterisk) instead of competing with it."""
    generic = scores.get("asterisk")
    if generic is None:
        return
    for brand in ASTERISK_FAMILY:
        if brand != "asterisk" and brand in scores:
            s = scores[brand]
            s.weights.extend(generic.weights)
            s.evidence.extend(generic.evidence)
            if brand == "freepbx" and generic.product:  # FreePBX's line is its channel driver
                s.product = generic.product
            del scores["asterisk"]
            return


def identify(obs: Observation) -> Fingerprint | None:
    """The most likely brand, or None when nothing the PBX said is known."""
    scores, front = _scores(obs)
    _merge_asterisk_family(scores)
    front_end = None
    if not scores and front:  # the proxy itself is what we talk to
        scores = front
    elif front:
        front_end = max(front, key=lambda k: front[k].value)
    if not scores:
        return None
    ranked = sorted(scores.items(), key=lambda kv: kv[1].value, reverse=True)
    brand, best = ranked[0]
    evidence = list(best.evidence)
    if front_end:
        evidence.append(f"front end: {' '.join(front[front_end].evidence)}")
    return Fingerprint(
        brand=brand, name=BRANDS[brand], confidence=round(best.value, 2), product=best.product,
        version=best.version, front_end=front_end, evidence=evidence,
        alternatives=[{"brand": b, "confidence": round(s.value, 2)} for b, s in ranked[1:4]],
        header_order=list(obs.header_names))


def fingerprint(log: RequestLog, remote: str | None = None) -> Fingerprint | None:
    return identify(observe(log, remote))
