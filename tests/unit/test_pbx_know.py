"""sipkit.pbx pure layers: fingerprint rules, ban detection, the knowledge base, pbx-config."""

from __future__ import annotations

import configparser
import re

import pytest

from sipkit.pbx.ban import detect
from sipkit.pbx.config import PASSWORD_PLACEHOLDER, pjsip, plan
from sipkit.pbx.fingerprint import BRANDS, Observation, identify, parse_challenge
from sipkit.pbx.knowledge import SYMPTOMS, load, lookup
from sipkit.pbx.requestlog import Answer, RequestLog, Sent
from sipkit.settings import load_site


def obs(server=None, allow=None, supported=None, challenge=None, status=401):
    ch = parse_challenge("WWW-Authenticate" if status == 401 else "Proxy-Authenticate",
                         challenge, status) if challenge else None
    return Observation(server=server, allow=allow, supported=supported, challenge=ch)


@pytest.mark.parametrize("server,brand,product,version", [
    ("FPBX-16.0.33(18.13.0)", "freepbx", None, "16.0.33"),
    ("Asterisk PBX 20.6.0~dfsg+~cs6.13.40431414-2build5", "asterisk", None, "20.6.0~dfsg"),
    ("3CXPhoneSystem 11.0.28976.849 (28862)", "3cx", None, "11.0.28976.849"),
    ("Yeastar S20-65.16.0.183", "yeastar", "S-Series", "65.16.0.183"),
    ("Cisco-CUCM12.5", "cucm", None, "12.5"),
    ("FreeSWITCH-mod_sofia/1.10.12-release~64bit", "freeswitch", None, "1.10.12-release~64bit"),
    ("kamailio (5.6.3 (x86_64/linux))", "kamailio", None, "5.6.3"),
])
def test_banners(server, brand, product, version):
    fp = identify(obs(server=server))
    assert (fp.brand, fp.product, fp.version) == (brand, product, version)
    assert fp.confidence >= 0.9


def test_style_without_banner_pjsip_vs_chan_sip():
    pj = identify(obs(allow="OPTIONS, SUBSCRIBE, NOTIFY, PUBLISH, INVITE, ACK, BYE, CANCEL, "
                      "UPDATE, PRACK, REGISTER, MESSAGE, REFER",
                      challenge='Digest realm="asterisk",nonce="1701432000/0123456789abcdef'
                                '0123456789abcdef",opaque="ab",algorithm=md5,qop="auth"'))
    assert (pj.brand, pj.product) == ("asterisk", "chan_pjsip") and pj.confidence > 0.8
    cs = identify(obs(challenge='Digest algorithm=MD5, realm="asterisk", nonce="1a2b3c4d"'))
    assert (cs.brand, cs.product) == ("asterisk", "chan_sip")


def test_3cx_by_challenge_alone_and_front_end():
    ch = 'Digest nonce="414d535c079daad234:38465ad0db9a18427774f51f1dcb7ab3",algorithm=MD5,' \
         'realm="3CXPhoneSystem"'
    assert identify(obs(challenge=ch, status=407)).brand == "3cx"
    fp = identify(obs(server="kamailio (5.6.3 (x86_64/linux))", challenge=ch, status=407))
    assert fp.brand == "3cx" and fp.front_end == "kamailio" and "behind Kamailio" in fp.label


def test_unknown_is_none():
    assert identify(obs(server="AcmeSwitch 2.0")) is None
    assert identify(Observation()) is None


def _sent(i, status=None, method="OPTIONS", auth=False, size=400, remote="192.0.2.1"):
    s = Sent(at=float(i), local="198.51.100.2", remote=remote, remote_port=5060,
             transport="udp", method=method, call_id=f"c{i}", cseq=i, authenticated=auth,
             size=size)
    if status:
        s.answer = Answer(status=status, reason="x", headers=[], at=i + 0.01)
    return s


def test_ban_silence_after_answers():
    log = RequestLog(sent=[_sent(1, 200), _sent(2, 200), _sent(3, 401, "REGISTER"),
                           _sent(4, None, "REGISTER", auth=True)])
    f = detect(log)
    assert f is not None and f.after == 3 and f.mode == "silent" and f.first.method == "REGISTER"


def test_no_ban_for_a_port_that_never_answered_or_a_lost_padded_probe():
    assert detect(RequestLog(sent=[_sent(1), _sent(2)])) is None
    assert detect(RequestLog(sent=[_sent(1, 200), _sent(2, None, size=3200)])) is None
    # answered again later: a lost packet, not a ban
    assert detect(RequestLog(sent=[_sent(1, 200), _sent(2), _sent(3, 200)])) is None


def test_ban_by_refusal_but_not_a_wrong_password():
    refusing = RequestLog(sent=[_sent(1, 200), _sent(2, 200), _sent(3, 403), _sent(4, 403)])
    f = detect(refusing)
    assert f is not None and f.mode == "refusing" and f.after == 2
    wrong_pw = RequestLog(sent=[_sent(1, 200), _sent(2, 401, "REGISTER"),
                                _sent(3, 403, "REGISTER", auth=True)])
    assert detect(wrong_pw) is None


def test_knowledge_base_is_valid_and_sourced():
    entries, config = load()
    assert entries
    for e in entries:
        assert e.brand in BRANDS and e.symptom in SYMPTOMS
        assert e.source_title
        assert e.source_url is None or e.source_url.startswith("https://")
    for brand, c in config.items():
        assert brand in BRANDS and c["source"]["title"] and c["steps"]
    assert lookup(None, "ban") is None
    assert lookup("yeastar", "ban", "S-Series").product == "S-Series"
    assert lookup("yeastar", "ban", "P-Series").product is None


# Option names of res_pjsip (pjsip.conf), per object type, from the Asterisk documentation:
# https://docs.asterisk.org/Latest_API/API_Documentation/Module_Configuration/res_pjsip
PJSIP_OPTIONS = {
    "transport": {"type", "protocol", "bind", "external_media_address",
                  "external_signaling_address", "local_net", "cert_file", "priv_key_file",
                  "method"},
    "auth": {"type", "auth_type", "username", "password", "realm"},
    "aor": {"type", "max_contacts", "remove_existing", "minimum_expiration",
            "maximum_expiration", "default_expiration", "qualify_frequency", "contact"},
    "endpoint": {"type", "transport", "context", "disallow", "allow", "dtmf_mode", "auth",
                 "aors", "direct_media", "rtp_symmetric", "force_rport", "rewrite_contact",
                 "ice_support", "deny", "permit", "acl", "callerid", "media_encryption",
                 "from_user", "from_domain", "outbound_auth"},
    "identify": {"type", "endpoint", "match"},
}


def parse_pjsip(text: str) -> list[tuple[str, dict[str, str]]]:
    """pjsip.conf reuses a section name per object type, which one ConfigParser cannot hold:
    each section is read by its own INI parser."""
    chunks = re.split(r"(?m)^(?=\[)", text)
    out = []
    for chunk in chunks:
        if not chunk.lstrip().startswith("["):
            continue
        cp = configparser.ConfigParser(comment_prefixes=(";",), interpolation=None)
        cp.read_string(chunk)
        (name,) = cp.sections()
        out.append((name, dict(cp[name])))
    return out


SITE = {"agent_uuid": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "phone_number": "+12084439178",
        "registrar_server": "pbx.example.com", "username_extension": "0100",
        "auth_username": "conn-0100", "auth_password": "a-Secret-77", "pbx_password": "p-Secret-1",
        "allowed_ip": "203.0.113.5", "check.connector_server": "198.51.100.7"}


def test_pjsip_block_parses_and_matches_the_site():
    site = load_site(None, dict(SITE))
    sections = parse_pjsip(pjsip(site))
    by_type = {opts["type"]: (name, opts) for name, opts in sections}
    assert set(by_type) == set(PJSIP_OPTIONS)
    for name, opts in sections:
        unknown = set(opts) - PJSIP_OPTIONS[opts["type"]]
        assert not unknown, (name, unknown)
    ep_name, ep = by_type["endpoint"]
    assert ep_name == "0100" and ep["aors"] == "0100" and ep["auth"] == by_type["auth"][0]
    assert ep["dtmf_mode"] == "rfc4733" and ep["direct_media"] == "no"
    assert ep["rtp_symmetric"] == ep["force_rport"] == ep["rewrite_contact"] == "yes"
    assert ep["permit"] == "198.51.100.7/255.255.255.255"
    assert by_type["auth"][1]["username"] == "conn-0100"
    assert by_type["auth"][1]["password"] == PASSWORD_PLACEHOLDER
    assert by_type["identify"][1] == {"type": "identify", "endpoint": "0100",
                                      "match": "198.51.100.7"}
    assert by_type["transport"][1]["external_media_address"] == "203.0.113.5"
    text = pjsip(site)
    assert "a-Secret-77" not in text and "p-Secret-1" not in text


@pytest.mark.parametrize("brand", ["3cx", "yeastar", "grandstream", "cucm", "avaya", "mitel",
                                   "freeswitch", "freepbx"])
def test_gui_steps_name_the_menu_path_from_the_source(brand):
    site = load_site(None, dict(SITE))
    p = plan(site, brand)
    assert p["steps"] and p["source"]["title"]
    for step in p["steps"] + p["notes"]:
        assert "{" not in step, step  # every placeholder filled
    for step in p["steps"]:
        assert " > " in step, step  # every step names its menu path
    # each brand's menu words come from its source, e.g. Yeastar's "Allow Remote Registration"
    joined = " ".join(p["steps"])
    words = {"3cx": "Disallow registrations from outside", "yeastar": "Allow Remote Registration",
             "grandstream": "Strategy", "cucm": "Enable Digest Authentication",
             "avaya": "3rd Party IP Endpoints", "mitel": "Generic SIP Phone",
             "freeswitch": "Accounts > Extensions", "freepbx": "Connectivity > Firewall > Networks"}[brand]
    assert words in joined and " > " in joined
    assert p["ports_to_forward"] and "198.51.100.7" in p["trust"][0]


def _wire(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


def test_request_log_folds_retransmissions_and_keeps_the_answer_as_sent():
    req = _wire("REGISTER sip:pbx.example SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bKa1"
                ";rport\nFrom: <sip:100@pbx.example>;tag=1\nTo: <sip:100@pbx.example>\n"
                "Call-ID: c1\nCSeq: 2 REGISTER\nauthorization: Digest username=\"100\", "
                "response=\"0123456789abcdef0123456789abcdef\"\nContent-Length: 0\n\n")
    resp = _wire("SIP/2.0 403 Forbidden\nvia: SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bKa1\n"
                 "From: <sip:100@pbx.example>;tag=1\nTo: <sip:100@pbx.example>;tag=x\n"
                 "Call-ID: c1\nCSeq: 2 REGISTER\nSERVER: 3CXPhoneSystem 18.0\nContent-Length: 0\n\n")
    log = RequestLog()
    local, remote = ("10.0.0.2", 5062), ("192.0.2.9", 5060)
    log.tap("out", req, local, remote, "udp", 1.0)
    log.tap("out", req, local, remote, "udp", 1.5)  # a retransmission
    log.tap("in", resp, local, remote, "udp", 1.6)
    log.tap("in", b"\r\n\r\n", local, remote, "udp", 1.7)  # a keep-alive: ignored
    (sent,) = log.sent
    assert sent.sends == 2 and sent.authenticated and sent.method == "REGISTER"
    assert sent.answer.status == 403 and sent.answer.reason == "Forbidden"
    # header names keep the PBX's own casing and order
    assert [n for n, _ in sent.answer.headers][:1] == ["via"]
    assert ("SERVER", "3CXPhoneSystem 18.0") in sent.answer.headers
    assert "0123456789abcdef" not in repr(log)  # request bytes (a digest response) never kept
    from sipkit.pbx.fingerprint import fingerprint

    assert fingerprint(log).brand == "3cx"


def test_a_failed_connect_after_answers_is_a_ban():
    """TLS: a banned source's SYN is dropped, so the failure is the connect itself."""
    log = RequestLog(sent=[_sent(1, 200), _sent(2, 401, "REGISTER")])
    log.connect_failed(None, "192.0.2.1", 5061, "tls", 3.0)
    f = detect(log)
    assert f is not None and f.first.method == "(connect)" and f.after == 2
    assert f.local == "198.51.100.2"  # from the requests that knew it
    only_failures = RequestLog()
    only_failures.connect_failed(None, "192.0.2.1", 5061, "tls", 1.0)
    assert detect(only_failures) is None  # a closed TLS port from the start is no ban


def test_pacing_is_below_the_strictest_documented_threshold():
    from sipkit.pbx import pacing

    per_minute = pacing.RECOMMENDED_PER_TARGET_RATE * 60
    assert per_minute < pacing.YEASTAR_PACKETS * 60 / pacing.YEASTAR_WINDOW_S
    assert pacing.BURST_PACKETS < 40  # MyPBX: 40 packets in 2 s
    assert pacing.within_budget(pacing.CHECK_REQUEST_BUDGET, 60)
    assert not pacing.within_budget(91, 60)
