"""allowed_ip behind NAT: site ns → nat ns (nft masquerade) → cloud ns running the lab's real
connector Kamailio. All addresses live in namespaces this test creates and deletes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
import yaml

from tests.conftest import ROOT, report_of

pytestmark = [pytest.mark.lab, pytest.mark.root]

NEED = [b for b in ("ip", "nft", "kamailio") if shutil.which(b) is None]
if os.geteuid() != 0 or NEED:
    pytest.skip(f"needs root and {', '.join(NEED) or 'ip/nft'} for network namespaces and NAT",
                allow_module_level=True)

SITE_IP, NAT_IN, NAT_OUT, CLOUD_IP = "10.201.1.2", "10.201.1.1", "10.201.2.1", "10.201.2.3"


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.fixture
def natnet(lab):
    tag = str(os.getpid() % 100000)
    site, nat, cloud = f"sksite{tag}", f"sknat{tag}", f"skcloud{tag}"
    veths = (f"sks{tag}", f"skn{tag}", f"skm{tag}", f"skc{tag}")
    try:
        for ns in (site, nat, cloud):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", veths[0], "netns", site, "type", "veth", "peer", "name",
           veths[1], "netns", nat)
        sh("ip", "link", "add", veths[2], "netns", nat, "type", "veth", "peer", "name",
           veths[3], "netns", cloud)
        for ns, dev, addr in ((site, veths[0], SITE_IP), (nat, veths[1], NAT_IN),
                              (nat, veths[2], NAT_OUT), (cloud, veths[3], CLOUD_IP)):
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", site, "route", "add", "default", "via", NAT_IN)
        sh("ip", "netns", "exec", nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh("ip", "netns", "exec", nat, "nft",
           f"add table ip sk; add chain ip sk post {{ type nat hook postrouting priority 100; }}; "
           f"add rule ip sk post oifname {veths[2]} masquerade")
        d = lab.directory / "connector"
        kam = subprocess.Popen(
            ["ip", "netns", "exec", cloud, shutil.which("kamailio"), "-DD", "-E", "-m", "32",
             "-M", "8", "-Y", str(d / "run"), "-P", str(d / "run" / f"nat{tag}.pid"),
             "-A", f'CONNECTOR_IP="{CLOUD_IP}"', "-A", f'TLSCFG="{d / "tls.cfg"}"',
             "-A", f'ALLOWED_FILE="{d / "allowed_ips"}"', "-f", str(d / "kamailio.cfg")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(0.5)
        yield {"site": site, "cloud": cloud}
    finally:
        if "kam" in locals():
            os.killpg(kam.pid, 15)
            kam.wait(5)
        for ns in (site, nat, cloud):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


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
