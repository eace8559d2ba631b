"""`sipkit check` refuses what it cannot honour before it sends anything: an output path it
cannot write, a timeout that is not a number; and it never calls "nothing verified" a PASS."""

from __future__ import annotations

import json

import pytest
import yaml

from sipkit.checks.runner import REGISTRY
from tests.conftest import _prefix
from tests.fuzzing import site_data
from tests.peers import Registrar, UdpPeer

IP = f"{_prefix()}.79"


@pytest.fixture
def peer_site(tmp_path):
    """A registrar that counts what it receives, and a site file pointing at it."""
    with UdpPeer(IP, 0, Registrar("plain")) as peer:
        site = tmp_path / "site.yaml"
        site.write_text(yaml.safe_dump(site_data(IP, peer.address[1])))
        yield peer, site


@pytest.mark.parametrize("flag", ["--pcap", "--junit"])
@pytest.mark.parametrize("where", ["missing-dir/out", "a-file/out", "a-directory"])
def test_unwritable_output_fails_with_exit_2_before_any_traffic(run_sipkit, tmp_path,
                                                                 peer_site, flag, where):
    peer, site = peer_site
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "a-file").write_text("")
    target = tmp_path / where
    proc = run_sipkit("check", "-c", str(site), flag, str(target), "--skip",
                      "call_inbound,call_outbound")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert flag in proc.stderr and str(target) in proc.stderr  # click says "is a directory"
    assert "Traceback" not in proc.stderr
    assert peer.received == [], "sipkit sent SIP before refusing the flag"
    assert not (tmp_path / "missing-dir").exists()


def test_writable_output_paths_are_not_left_behind_when_the_run_is_refused(run_sipkit,
                                                                          tmp_path, peer_site):
    _peer, site = peer_site
    pcap = tmp_path / "ok.pcap"
    proc = run_sipkit("check", "-c", str(site), "--pcap", str(pcap), "--junit",
                      str(tmp_path / "no" / "j.xml"))
    assert proc.returncode == 2 and not pcap.exists()


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-1", "0"])
def test_timeout_must_be_a_number_in_range(run_sipkit, peer_site, value):
    peer, site = peer_site
    proc = run_sipkit("check", "-c", str(site), "--timeout", value)
    assert proc.returncode == 2, proc.stderr
    assert "--timeout" in proc.stderr and "Traceback" not in proc.stderr
    assert peer.received == []


@pytest.mark.parametrize("args", [["--skip", "config"], ["--skip", ",".join(REGISTRY)]])
def test_nothing_verified_is_not_a_pass(run_sipkit, peer_site, args):
    _peer, site = peer_site
    proc = run_sipkit("check", "-c", str(site), "--json", *args)
    report = json.loads(proc.stdout)
    assert all(c["status"] == "skip" for c in report["checks"]), report["checks"]
    assert report["status"] == "skip" and proc.returncode == 1
    human = run_sipkit("check", "-c", str(site), *args)
    assert human.returncode == 1 and "PASS" not in human.stdout
    assert "Nothing was verified" in human.stdout
