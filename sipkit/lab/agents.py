"""The sandbox's hook to the lab cloud: one ``sipkit.lab.cloud_agent`` process per connector.

The sandbox calls ``start`` when a connector is created (and for every stored connector when it
starts), ``stop`` when one is deleted, and ``call`` for its calls endpoint. What the agents
report (registration, call states) is kept here and shown in the API's views, as the cloud's
own view of its connectors.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid as uuidlib

from .cloud_agent import MARK

STOP_S = 8.0  # un-REGISTER takes ≤ 2 s; a loaded machine needs more


class CloudAgents:
    def __init__(self, bind_ip: str):
        self.bind_ip = bind_ip
        self.lock = threading.Lock()
        self.procs: dict[str, subprocess.Popen] = {}
        self.registration: dict[str, dict] = {}  # connector uuid -> last registration event
        self.calls: dict[str, dict] = {}  # call id -> the call as the API shows it

    def start(self, uid: str, body: dict) -> None:
        config = {"bind_ip": self.bind_ip, "registrar": body["registrar_server"],
                  "port": body.get("port", 5060), "transport": body.get("connection_type", "udp"),
                  "username": body["username_extension"], "domain": body["registrar_server"],
                  "auth_username": body.get("auth_username"),
                  "password": body.get("auth_password") or body["pbx_password"]}
        proc = subprocess.Popen([sys.executable, "-m", "sipkit.lab.cloud_agent"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, bufsize=1)
        proc.stdin.write(json.dumps(config) + "\n")  # the password: stdin only, never argv
        proc.stdin.flush()
        with self.lock:
            self.procs[uid] = proc
            self.registration[uid] = {"state": "pending", "code": None, "reason": None,
                                      "at": _now()}
        threading.Thread(target=self._events, args=(uid, proc), daemon=True).start()

    def stop(self, uid: str) -> None:
        with self.lock:
            proc = self.procs.pop(uid, None)
            self.registration.pop(uid, None)
        if proc is None:
            return
        try:
            proc.stdin.close()  # EOF: hang up, un-register, exit
        except OSError:
            pass
        try:
            proc.wait(STOP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop_all(self) -> None:
        for uid in list(self.procs):
            self.stop(uid)

    def call(self, uid: str, number: str, seconds: float) -> dict:
        cid = str(uuidlib.uuid4())
        call = {"id": cid, "pbx_extension_connector_uuid": uid, "to": number,
                "status": "initiated", "sip_code": None, "sip_reason": None,
                "created_at": _now()}
        with self.lock:
            self.calls[cid] = call
            proc = self.procs.get(uid)
        if proc is None or proc.poll() is not None:
            call.update(status="failed", sip_reason="the connector's cloud agent is not running")
            return dict(call)
        proc.stdin.write(json.dumps({"cmd": "call", "id": cid, "to": number,
                                     "seconds": seconds}) + "\n")
        proc.stdin.flush()
        return dict(call)

    def view(self, uid: str) -> dict | None:
        with self.lock:
            reg = self.registration.get(uid)
            return dict(reg) if reg else None

    def call_view(self, cid: str) -> dict | None:
        with self.lock:
            call = self.calls.get(cid)
            return dict(call) if call else None

    def _events(self, uid: str, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            if not line.startswith(MARK):
                continue
            try:
                ev = json.loads(line[len(MARK):])
            except ValueError:
                continue
            with self.lock:
                if ev.get("event") == "registration" and uid in self.registration:
                    # (our own un-REGISTER comes after stop() dropped the uid: not seen here)
                    ok = 200 <= (ev.get("code") or 0) < 300 and (ev.get("expires") or 0) > 0
                    self.registration[uid] = {
                        "state": "registered" if ok else "failed", "code": ev.get("code"),
                        "reason": ev.get("reason"), "challenged": ev.get("challenged"),
                        "expires": ev.get("expires"), "at": _now()}
                elif ev.get("event") == "call" and ev.get("id") in self.calls:
                    state = {"dialling": "initiated", "ringing": "ringing",
                             "answered": "answered", "ended": "completed",
                             "failed": "failed"}.get(ev.get("state"), ev.get("state"))
                    self.calls[ev["id"]].update(status=state, sip_code=ev.get("code") or None,
                                                sip_reason=ev.get("reason") or None)
        with self.lock:
            if self.procs.get(uid) is proc and uid in self.registration:
                self.registration[uid] = {"state": "failed", "code": None,
                                          "reason": "the cloud agent exited", "at": _now()}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
