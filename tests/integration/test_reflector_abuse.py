"""The reflector must not become a scanner or an amplifier: abuse attempts against a real
`sipkit reflector serve` on the session's loopback block (.61 reflector, .62 the "agent",
.63 a stranger). The lab PBX (.1) plays the third party nobody may probe."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import time

import httpx
import pytest
import yaml

from tests.conftest import ROOT, SIPKIT

pytestmark = pytest.mark.lab

SECRET = "never-send-me-9f2c"


@pytest.fixture(scope="module")
def rfl(lab, tmp_path_factory):
    from sipkit.lab.certs import make_ca, make_server_cert
    from sipkit.reflector.tokens import digest, new_token

    d = tmp_path_factory.mktemp("reflector")
    ip, agent, stranger = lab.ip(61), lab.ip(62), lab.ip(63)
    ca, ca_key = make_ca(d, "abuse CA")
    crt, key = make_server_cert(d, "api", ca, ca_key, ["reflector.test"], [ip])
    tokens = {"plain": new_token(), "trusted": new_token(), "flood": new_token()}
    (d / "tokens.yaml").write_text(yaml.safe_dump([
        {"name": "plain", "sha256": digest(tokens["plain"])},
        {"name": "trusted", "sha256": digest(tokens["trusted"]), "allow": [lab.pbx_ip]},
        {"name": "flood", "sha256": digest(tokens["flood"])}]))
    log = d / "requests.jsonl"
    sip_port = 25060 + os.getpid() % 1000
    cfg = {"listen": f"{ip}:8443", "tls_cert": str(crt), "tls_key": str(key), "public_ip": ip,
           "sip_port": sip_port, "tokens": str(d / "tokens.yaml"), "request_log": str(log),
           "timeout": 1.5, "limits": {"per_token_per_minute": 20, "per_target_per_minute": 3,
                                      "max_mirror_bytes": 4096, "max_body_bytes": 4096}}
    (d / "reflector.yaml").write_text(yaml.safe_dump(cfg))
    err = d / "stderr.log"
    with open(err, "wb") as out:
        proc = subprocess.Popen([*SIPKIT, "reflector", "serve", "-c", str(d / "reflector.yaml")],
                                stdout=out, stderr=out, cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while "sipkit reflector: API" not in err.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.1)

        trust = ssl.create_default_context(cafile=str(ca))

        def client(token: str | None, source: str = agent) -> httpx.Client:
            return httpx.Client(base_url=f"https://{ip}:8443", timeout=30,
                                headers={"Authorization": f"Bearer {token}"} if token else {},
                                transport=httpx.HTTPTransport(local_address=source,
                                                              verify=trust))

        yield {"client": client, "tokens": tokens, "log": log, "ip": ip, "agent": agent,
               "stranger": stranger, "sip_port": sip_port}
    finally:
        proc.terminate()
        proc.wait(10)
    text = log.read_text()
    for token in tokens.values():  # its logs hold no token, ever
        assert token not in text
    assert SECRET not in text


def _rows(rfl) -> list[dict]:
    return [json.loads(line) for line in rfl["log"].read_text().splitlines()]


def test_a_bad_token_gets_401_and_the_log_names_no_token(rfl):
    for token in (None, "rfl_guessed-token-value", rfl["tokens"]["plain"][:-2] + "xx"):
        with rfl["client"](token) as c:
            r = c.get("/v1/whoami")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    rows = [r for r in _rows(rfl) if r["kind"] == "api" and r["status"] == 401]
    assert len(rows) >= 3 and all(r["token"] is None for r in rows)
    assert "rfl_guessed-token-value" not in rfl["log"].read_text()
    # guessing on: after ten bad tokens a minute the address gets 429 instead of 401
    with rfl["client"](None, source=rfl["stranger"]) as c:
        codes = [c.get("/v1/whoami", headers={"Authorization": f"Bearer rfl_guess{i}"})
                 .status_code for i in range(12)]
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]


def test_a_third_party_target_is_refused_and_gets_no_packet(rfl, lab):
    before = (lab.directory / "pbx.log").read_text(errors="replace").count(rfl["ip"])
    with rfl["client"](rfl["tokens"]["plain"]) as c:
        r = c.post("/v1/reach", json={"host": lab.pbx_ip, "port": 5060,
                                      "transports": ["udp", "tcp"], "user": "100"})
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "target_not_allowed"
        assert r.json()["caller"] == rfl["agent"]
        me = c.get("/v1/whoami").json()
    assert me["address"] == rfl["agent"]
    time.sleep(0.5)
    after = (lab.directory / "pbx.log").read_text(errors="replace").count(rfl["ip"])
    assert after == before  # not one request from the reflector reached the PBX


def test_a_token_entry_may_list_other_targets(rfl, lab):
    with rfl["client"](rfl["tokens"]["trusted"]) as c:
        r = c.post("/v1/reach", json={"host": lab.pbx_ip, "port": 5060, "transports": ["udp"],
                                      "user": "100", "domain": "pbx.sipkit.test"})
    assert r.status_code == 200, r.text
    row = r.json()["probed"][0]
    assert row["options"]["status"] == 200
    assert row["register"]["status"] == 401  # the challenge, seen without any credentials
    assert row["register"]["challenge"]["realm"] == "pbx.sipkit.test"


def test_a_flood_of_requests_is_rate_limited(rfl):
    with rfl["client"](rfl["tokens"]["flood"]) as c:
        codes = [c.get("/v1/whoami").status_code for _ in range(30)]
        last = c.get("/v1/whoami")
    assert codes[:20] == [200] * 20 and set(codes[20:]) == {429}
    assert int(last.headers["Retry-After"]) >= 1


def test_probes_per_target_are_limited_and_bounded(rfl):
    """A UDP sink on the agent's own address counts what the reflector sends it."""
    from sipkit.reflector.outside import MAX_SENDS

    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind((rfl["agent"], 0))
    sink.settimeout(0.2)
    port = sink.getsockname()[1]
    try:
        with rfl["client"](rfl["tokens"]["plain"]) as c:
            answers = [c.post("/v1/reach", json={"host": rfl["agent"], "port": port,
                                                 "transports": ["udp"], "user": "100"})
                       for _ in range(4)]
        got = _count(sink)
    finally:
        sink.close()
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].json()["probed"][0]["outcome"] == "no_answer"
    # three allowed requests, each an OPTIONS and a REGISTER, each at most MAX_SENDS copies
    assert 6 <= got <= 3 * 2 * MAX_SENDS, got


def _count(sink: socket.socket) -> int:
    """Datagrams waiting on ``sink`` (it has a short timeout)."""
    got = 0
    try:
        while True:
            sink.recv(65535)
            got += 1
    except TimeoutError:
        return got


def _udp(src: str, dest: tuple[str, int], data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((src, 0))
        s.sendto(data, dest)


def test_huge_mirror_payloads_are_refused_not_stored(rfl):
    dest = (rfl["ip"], rfl["sip_port"])
    with rfl["client"](rfl["tokens"]["plain"]) as c:
        m = c.post("/v1/mirror").json()
        head = (f"INVITE sip:{m['ruri_user']}@{rfl['ip']} SIP/2.0\r\nVia: SIP/2.0/UDP x;branch=z9"
                "\r\nCSeq: 1 INVITE\r\nCall-ID: a\r\nContent-Length: 20000\r\n\r\n").encode()
        _udp(rfl["agent"], dest, head + b"v" * 20000)
        with socket.create_connection(dest, source_address=(rfl["agent"], 0)) as s:
            s.sendall(head + b"v" * 20000)
            time.sleep(0.3)
        small = f"OPTIONS sip:{m['ruri_user']}@x SIP/2.0\r\n\r\n".encode()
        _udp(rfl["stranger"], dest, small)  # the right id from another address: ignored
        time.sleep(0.5)
        got = c.get(f"/v1/mirror/{m['id']}").json()["messages"]
        big = c.post("/v1/reach", content=b'{"host": "' + b"a" * 8000 + b'"}',
                     headers={"Content-Type": "application/json"})
    assert [g["transport"] for g in got] == ["udp", "tcp"], got
    assert all("data_b64" not in g and g["refused"] == "over 4096 bytes" for g in got)
    assert big.status_code == 413
    stranger_rows = [r for r in _rows(rfl) if r["kind"] == "sip"
                     and r["source"].startswith(rfl["stranger"])]
    assert all(r["session"] is None and r["data"] is None for r in stranger_rows)


def test_credentials_are_refused_and_never_logged(rfl):
    with rfl["client"](rfl["tokens"]["plain"]) as c:
        r = c.post("/v1/reach", json={"host": rfl["agent"], "port": 5060,
                                      "transports": ["udp"], "user": "100",
                                      "password": SECRET})
    assert r.status_code == 422
    assert "password: not accepted" in r.json()["error"]["message"]
    row = [x for x in _rows(rfl) if x["kind"] == "api" and x["path"] == "/v1/reach"][-1]
    assert row["body"]["password"] == "<not logged>"


def test_udp_sends_stay_bounded_whatever_the_timeout(lab):
    """outside.probe towards a silent UDP port with a 30 s timeout: the cap holds."""
    import asyncio

    from sipkit.reflector.outside import MAX_SENDS, REQUESTS_PER_TRANSPORT, probe

    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind((lab.ip(62), 0))
    sink.settimeout(0.2)
    try:
        row = asyncio.run(probe(lab.ip(62), sink.getsockname()[1], "udp", host=lab.ip(62),
                                user="100", domain=None, timeout=30, local_ip=lab.ip(61)))
        got = _count(sink)
    finally:
        sink.close()
    assert row["outcome"] == "no_answer" and row["options"]["sends"] <= MAX_SENDS
    assert REQUESTS_PER_TRANSPORT <= got <= REQUESTS_PER_TRANSPORT * MAX_SENDS, got


def test_scanner_noise_gets_no_answer_and_barely_a_log_line(rfl):
    dest = (rfl["ip"], rfl["sip_port"])
    probe = (f"OPTIONS sip:100@{rfl['ip']} SIP/2.0\r\nVia: SIP/2.0/UDP {rfl['stranger']};"
             "branch=z9hG4bKscan\r\nCSeq: 1 OPTIONS\r\nCall-ID: scan\r\n"
             "Content-Length: 0\r\n\r\n").encode()
    before = len(_rows(rfl))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((rfl["stranger"], 0))
        s.settimeout(0.5)
        for _ in range(200):
            s.sendto(probe, dest)
        with pytest.raises(TimeoutError):
            s.recv(65535)  # not one answer: nothing to amplify, nothing to fingerprint
        time.sleep(1.1)
        s.sendto(probe, dest)
        time.sleep(0.3)
    rows = [r for r in _rows(rfl)[before:] if r["kind"] == "sip"]
    assert 1 <= len(rows) <= 4, rows
    assert sum(r.get("suppressed") or 0 for r in rows) >= 190


def test_binding_tests_need_a_flow_and_growing_bounded_steps(rfl):
    with rfl["client"](rfl["tokens"]["trusted"]) as c:
        b = c.post("/v1/binding").json()
        early = c.post(f"/v1/binding/{b['id']}/run", json={"idle_s": [1], "budget_s": 5})
        shrinking = c.post(f"/v1/binding/{b['id']}/run", json={"idle_s": [5, 1], "budget_s": 9})
        other = c.post("/v1/binding/0123456789abcdef/run", json={"idle_s": [1], "budget_s": 5})
    assert early.status_code == 409 and early.json()["error"]["code"] == "no_flow"
    assert shrinking.status_code == 422 and "growing idle times" in shrinking.text
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
