"""allowed_ip behind NAT: site ns → nat ns (nft masquerade) → cloud ns running the lab's real
connector Kamailio. All addresses live in namespaces this test creates and deletes."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT, report_of
from tests.netns import SKIP_REASON, NetLab, kamailio, tag, wait_sip_in

pytestmark = [pytest.mark.lab, pytest.mark.root]

if SKIP_REASON:
    pytest.skip(SKIP_REASON, allow_module_level=True)

SITE_IP, NAT_IN, NAT_OUT, CLOUD_IP = "10.201.1.2", "10.201.1.1", "10.201.2.1", "10.201.2.3"


@pytest.fixture
def natnet(lab):
    t = tag()
    with NetLab("sk") as net:
        site, nat, cloud = net.ns(f"site{t}"), net.ns(f"nat{t}"), net.ns(f"cloud{t}")
        net.link(site, f"sks{t}", SITE_IP, nat, f"skn{t}", NAT_IN)
        net.link(nat, f"skm{t}", NAT_OUT, cloud, f"skc{t}", CLOUD_IP)
        net.route(site, NAT_IN)
        net.router(nat)
        net.nft(nat, "add table ip sk\nadd chain ip sk post { type nat hook postrouting "
                     f"priority 100; }}\nadd rule ip sk post oifname skm{t} masquerade\n")
        d = lab.directory / "connector"
        kamailio(net, cloud, d / "kamailio.cfg", d / "run" / f"nat{t}",
                 {"CONNECTOR_IP": CLOUD_IP, "TLSCFG": str(d / "tls.cfg"),
                  "ALLOWED_FILE": str(d / "allowed_ips")})
        assert wait_sip_in(net, site, CLOUD_IP, 5060), "the connector did not answer via NAT"
        yield {"site": site, "cloud": cloud}


def _check(natnet, tmp_path, allowed_ip: str) -> dict:
    site = {"agent_uuid": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "phone_number": "+902124439178",
            "registrar_server": CLOUD_IP, "username_extension": "100", "pbx_password": "nat-pw-1",
            "allowed_ip": allowed_ip,
            "check": {"connector_server": CLOUD_IP, "allow_private_registrar": True}}
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(site))
    proc = subprocess.run(["ip", "netns", "exec", natnet["site"], sys.executable, "-m", "sipkit",
                           "check", "-c", str(path), "--only", "allowed_ip", "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    return next(c for c in report_of(proc)["checks"] if c["id"] == "allowed_ip")


def test_behind_nat_the_cloud_sees_the_nat_address(natnet, tmp_path):
    a = _check(natnet, tmp_path, SITE_IP)  # the classic mistake: the PBX's LAN address
    assert a["status"] == "fail", a
    assert a["details"]["seen_ips"] == [NAT_OUT]
    assert f"allowed_ip: {NAT_OUT}" in a["hint"]
    assert all(p["local"].startswith(SITE_IP) for p in a["details"]["probes"])


def test_behind_nat_with_the_right_allowed_ip(natnet, tmp_path):
    a = _check(natnet, tmp_path, NAT_OUT)
    assert a["status"] in ("pass", "warn") and a["details"]["seen_ips"] == [NAT_OUT], a
    assert "= allowed_ip" in a["summary"]
