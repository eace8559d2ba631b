"""What to set on the PBX for this connector (`sipkit pbx-config`): pure, from the site file.

Asterisk family: a pjsip.conf block (endpoint, auth, aor, identify, transport) whose every
option is a documented res_pjsip option; GUI PBXs: the knowledge base's numbered steps with the
site's values filled in; for all: the ports to forward and the addresses to trust. The password
is never printed: the auth section names where it comes from.
"""

from __future__ import annotations

from typing import Any

from ..net.addresses import parse_ip
from .fingerprint import BRANDS
from .knowledge import config_for

PJSIP_BRANDS = ("asterisk", "freepbx", "issabel")
# RTP port ranges by product (Asterisk rtp.conf rtpstart/rtpend defaults; 3CX documentation;
# FreeSWITCH switch.conf rtp-start-port/rtp-end-port defaults).
RTP_RANGES = {"asterisk": "10000-20000", "freepbx": "10000-20000", "issabel": "10000-20000",
              "3cx": "9000-10999", "freeswitch": "16384-32768"}
CODECS = ("ulaw", "alaw")  # G.711, what the connector and the lab's media echo speak
PASSWORD_PLACEHOLDER = "<pbx_password from the site file>"


def _connector(site, connector_ip: str | None) -> str | None:
    if connector_ip:
        return connector_ip
    value = getattr(site.check, "connector_server", None)
    return value if value and value != "auto" and parse_ip(value) else None


def values(site, connector_ip: str | None = None) -> dict[str, Any]:
    ep = site.endpoints()[0]
    connector = _connector(site, connector_ip)
    return {"ext": site.username_extension, "auth_user": ep.digest_username,
            "connector": connector or "<connector server IP>", "connector_ip": connector,
            "allowed_ip": site.allowed_ip, "port": site.port,
            "transport": site.connection_type, "transport_upper": site.connection_type.upper()}


def pjsip(site, connector_ip: str | None = None) -> str:
    """The pjsip.conf block (res_pjsip option names only)."""
    v = values(site, connector_ip)
    ext, proto = v["ext"], v["transport"]
    tname = f"transport-{proto}-mihu"
    lines = [f"; sipkit pbx-config: extension {ext} for the Mihu PBX extension connector",
             "; (plain Asterisk: pjsip.conf; FreePBX regenerates its files: use the steps)",
             "", f"[{tname}]", "type=transport", f"protocol={proto}",
             f"bind=0.0.0.0:{v['port']}",
             f"external_media_address={v['allowed_ip']}",
             f"external_signaling_address={v['allowed_ip']}",
             "; add local_net=<your LAN>/<mask> lines for the PBX's own networks",
             "", f"[{ext}]", "type=auth", "auth_type=userpass", f"username={v['auth_user']}",
             "; password: the site file's pbx_password (sipkit never prints it)",
             f"password={PASSWORD_PLACEHOLDER}",
             "", f"[{ext}]", "type=aor", "max_contacts=1", "remove_existing=yes",
             "minimum_expiration=60", "qualify_frequency=60",
             "", f"[{ext}]", "type=endpoint", f"transport={tname}", "context=from-internal",
             "disallow=all", f"allow={','.join(CODECS)}", "dtmf_mode=rfc4733",
             f"auth={ext}", f"aors={ext}", "direct_media=no", "rtp_symmetric=yes",
             "force_rport=yes", "rewrite_contact=yes", "ice_support=no"]
    if v["connector_ip"]:
        lines += ["deny=0.0.0.0/0.0.0.0", f"permit={v['connector_ip']}/255.255.255.255",
                  "", f"[{ext}-mihu-connector]", "type=identify", f"endpoint={ext}",
                  f"match={v['connector_ip']}"]
    else:
        lines += ["; connector server address unknown (connector_server: auto): re-run with",
                  ";   --connector-ip to restrict the endpoint to it and add an identify"]
    return "\n".join(lines) + "\n"


def plan(site, brand: str, connector_ip: str | None = None) -> dict[str, Any]:
    v = values(site, connector_ip)
    cfg = config_for(brand) or {}
    steps = [s.format(**v) for s in cfg.get("steps", [])]
    rtp = RTP_RANGES.get(brand)
    ports = [f"SIP {v['transport_upper']} {v['port']} from {v['connector']} to the PBX",
             (f"RTP UDP {rtp} from {v['connector']} to the PBX" if rtp else
              "RTP: the PBX's RTP port range (see its media settings), UDP, from "
              f"{v['connector']}")]
    return {"brand": brand, "name": BRANDS.get(brand, brand), "extension": v["ext"],
            "digest_user": v["auth_user"], "connector_server": v["connector_ip"],
            "pjsip_conf": pjsip(site, connector_ip) if brand in PJSIP_BRANDS else None,
            "steps": steps, "source": cfg.get("source"), "ports_to_forward": ports,
            "trust": [f"{v['connector']} (the SIP connector server: signalling and media)"],
            "notes": [n.format(**v) for n in cfg.get("notes", [])] + ([] if v["connector_ip"] else [
                "connector_server is auto: give --connector-ip (sipkit server show prints it)"])}


def render_text(p: dict[str, Any]) -> str:
    head = (f"PBX configuration for {p['name']}: extension {p['extension']} "
            f"(digest user {p['digest_user']})")
    out = [head, ""]
    if p["pjsip_conf"]:
        out += ["pjsip.conf:", "", p["pjsip_conf"]]
    if p["steps"]:
        out.append("Steps:")
        out += [f"  {i}. {s}" for i, s in enumerate(p["steps"], 1)]
        src = p.get("source") or {}
        out.append(f"  (source: {src.get('title')}" + (f", {src['url']}" if src.get("url")
                                                        else "") + ")")
        out.append("")
    out.append("Ports to forward:")
    out += [f"  - {x}" for x in p["ports_to_forward"]]
    out.append("Addresses to trust:")
    out += [f"  - {x}" for x in p["trust"]]
    out += [f"Note: {n}" for n in p["notes"]]
    return "\n".join(out) + "\n"
