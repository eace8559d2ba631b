"""Finished dialogs become findings, findings become CheckResults (the `check` verdict model).

One CheckResult per diagnosis, problems ranked first:

    capture              what was read; warn when the file is truncated/corrupt or has no SIP
    auth_loop            credentials sent again and again and rejected each time (lockout risk)
    registration         REGISTER outcomes: 2xx, 403/404/..., challenge never answered, no answer
    call_setup           INVITE outcomes: answered, 4xx/5xx/6xx with their meaning, no final
                         answer, 2xx never ACKed
    one_way_audio        RTP per direction of each answered call (when the capture has RTP)
    sdp_private_address  SDP c= private while the signalling crosses public addresses
    nat_rewrite          Via sent-by differs from the packet's source (or from Via received)
    retransmissions      requests sent 4+ times, 2xx repeated because no ACK arrives
    requests             other methods (OPTIONS, BYE, SUBSCRIBE...) refused or unanswered
"""

from __future__ import annotations

from collections import OrderedDict

from ..report import CheckResult, Evidence, Report
from .dialogs import Dialog, Tracker
from .reader import ReadStats

MAX_EXAMPLES = 5
MEDIA_NOT_CAPTURED = "RTP not in this capture"
MAX_ROWS = 200  # dialog rows kept for the table (problems first)
MAX_AORS = 10000

MEANING = {
    400: "malformed request", 401: "authentication required", 402: "payment required",
    403: "forbidden: wrong password, or the source address/user is not allowed",
    404: "unknown user or number", 405: "method not allowed", 406: "not acceptable",
    407: "proxy authentication required", 408: "request timeout (no answer further on)",
    410: "gone", 413: "request too large", 415: "unsupported media type",
    416: "unsupported URI scheme", 420: "bad extension", 421: "extension required",
    423: "interval too brief (Expires too short)", 429: "too many requests (rate limited)",
    433: "anonymity disallowed", 477: "send failed further on", 480: "temporarily unavailable "
    "(callee not registered or not answering)", 481: "no such call/transaction",
    482: "loop detected", 483: "too many hops", 484: "address incomplete (number format)",
    485: "ambiguous", 486: "busy here", 487: "request terminated (cancelled)",
    488: "not acceptable here (codecs/SDP)", 489: "bad event", 491: "request pending",
    493: "undecipherable", 494: "security agreement required", 500: "server internal error",
    501: "not implemented", 502: "bad gateway", 503: "service unavailable (overload, no route, "
    "trunk down)", 504: "server timeout (no answer further on)", 505: "SIP version not "
    "supported", 513: "message too large", 580: "precondition failure", 600: "busy everywhere",
    603: "declined", 604: "does not exist anywhere", 606: "not acceptable (codecs/SDP)",
}
# Final answers that are a person's or a phone's choice, not a fault in the path.
USER_OUTCOMES = {480, 486, 487, 600, 603}


# call_setup's verdict: the first of these that occurred (a decline only when nothing answered).
CALL_PROBLEMS = (
    ("invite_no_final", "fail", "INVITE(s) never got a final answer",
     "the answer is lost on the way back (firewall, NAT without rport, SIP ALG) or the callee is "
     "unreachable: compare with where the INVITE was sent"),
    ("call_failed", "fail", "call(s) refused",
     "404/484: the number format (normalizer); 403: caller not allowed (allowed_ip, "
     "credentials); 488/606: no common codec; 5xx: the PBX or its trunk"),
    ("call_no_ack", "warn", "answered call(s) never ACKed",
     "the 200 OK does not reach the caller or the ACK goes to a wrong Contact (NAT): such calls "
     "drop after about 32 s"),
    ("reinvite_failed", "warn", "answered call(s) whose re-INVITE was refused",
     "in-dialog requests do not get through, or the far end cannot handle a re-INVITE (session "
     "refresh, hold, codec change): such calls drop at the session timer or lose audio; check "
     "Contact/Record-Route behind NAT and the far end's re-INVITE support"),
    ("call_declined", "warn", "call(s) not answered",
     "busy, declined or the callee is not registered: not a network fault"),
)


def meaning(status: int) -> str:
    return MEANING.get(status) or {4: "request refused", 5: "server failure",
                                   6: "global failure"}.get(status // 100, "")


def _who(dlg: Dialog) -> str:
    return f"{dlg.from_user or '?'}→{dlg.to_user or '?'} (Call-ID {dlg.call_id[:16]})"


class Findings:
    """Counts and a few examples per finding, with the first example's ladder."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.examples: dict[str, list[str]] = {}
        self.ladders: dict[str, list[Evidence]] = {}
        self.rows: list[dict] = []
        self.problem_rows = 0
        # (AOR, source IP) -> authenticated attempts rejected, across Call-IDs: phones that
        # take a new Call-ID per attempt still loop.
        self.aor_rejects: OrderedDict[tuple, list] = OrderedDict()

    def note(self, key: str, dlg: Dialog | None, text: str) -> None:
        self.totals[key] = self.totals.get(key, 0) + 1
        ex = self.examples.setdefault(key, [])
        if len(ex) < MAX_EXAMPLES:
            ex.append(text)
        if dlg is not None and key not in self.ladders:
            self.ladders[key] = dlg.evidence()

    def add(self, dlg: Dialog) -> None:
        """Classify one finished dialog."""
        problem = self._classify(dlg)
        if problem and len(self.rows) >= MAX_ROWS and self.problem_rows < MAX_ROWS:
            # make room: a problem row replaces the last plain one
            for i in range(len(self.rows) - 1, -1, -1):
                if not self.rows[i]["problem"]:
                    del self.rows[i]
                    break
        if len(self.rows) < MAX_ROWS:
            self.rows.append(dlg.row(problem))
            self.problem_rows += bool(problem)

    def _classify(self, dlg: Dialog) -> str | None:
        self.totals[f"kind:{dlg.kind}"] = self.totals.get(f"kind:{dlg.kind}", 0) + 1
        who, f, problem = _who(dlg), dlg.final, None
        if not any(m == dlg.kind for (_, _, m) in dlg.requests):
            # Answers without their request: the capture began mid-exchange (a late 408, a
            # retransmitted 200) or sees one direction only. Nothing to judge.
            self.note("before_capture", None, f"{who}: answers only, no {dlg.kind} seen")
            return None
        if dlg.rejected_auth >= 2:
            problem = "auth loop"
            self.note("auth_loop", dlg, f"{who}: {dlg.auth_requests} authenticated "
                      f"{dlg.kind}s, {dlg.rejected_auth} rejected")
        elif dlg.rejected_auth and dlg.aor:
            key = (dlg.aor, dlg.src.rsplit(":", 1)[0])
            entry = self.aor_rejects.setdefault(key, [0, 0, dlg])
            entry[0] += dlg.rejected_auth
            entry[1] += 1
            if len(self.aor_rejects) > MAX_AORS:
                self.aor_rejects.popitem(last=False)
        since_first = dlg.idle_at_end + (dlg.last - dlg.first)
        if dlg.kind == "REGISTER":
            if (f is None and dlg.open_at_end and since_first < 32) or (
                    f is not None and f[0] in (401, 407) and dlg.cut_short(2.0)):
                self.note("register_unfinished", None, f"{who}: the capture ends mid-exchange")
            elif f is None:
                problem = problem or "no answer"
                self.note("register_no_answer", dlg, f"{who}: {dlg.packets} REGISTER(s) "
                          f"from {dlg.src} to {dlg.dst}, no final answer")
            elif 200 <= f[0] < 300:
                self.note("register_ok", None, who)
            elif f[0] in (401, 407) and not dlg.auth_requests:
                problem = problem or "challenge unanswered"
                self.note("register_failed", dlg, f"{who}: {f[0]} {f[1]} and the client never "
                          "answered the challenge (no credentials configured?)")
            else:
                problem = problem or f"{f[0]}"
                self.note("register_failed", dlg, f"{who}: {f[0]} {f[1]} — {meaning(f[0])}")
        elif dlg.kind == "INVITE":
            if dlg.answered:
                self.note("call_answered", None, who)
                if not dlg.acked and dlg.last - dlg.answered_at > 1.0:
                    problem = problem or "no ACK"
                    self.note("call_no_ack", dlg, f"{who}: answered, but no ACK in "
                              f"{dlg.last - dlg.answered_at:.1f} s")
                if dlg.reinvite_failed:
                    code, reason = dlg.reinvite_failed
                    problem = problem or f"re-INVITE {code}"
                    self.note("reinvite_failed", dlg, f"{who}: a re-INVITE got {code} {reason} "
                              f"— {meaning(code)}")
                problem = self._media(dlg, who) or problem
            elif (f is None and dlg.open_at_end and (dlg.provisionals or since_first < 32)) or (
                    f is not None and f[0] in (401, 407) and dlg.cut_short(2.0)):
                self.note("call_unfinished", None, f"{who}: in progress when the capture "
                          "ended")
            elif f is None:
                problem = problem or "no final answer"
                self.note("invite_no_final", dlg, f"{who}: {dlg.provisionals} provisional(s), "
                          f"no final answer in {dlg.last - dlg.first:.1f} s")
            elif f[0] == 487 and dlg.cancelled:
                self.note("call_cancelled", None, who)
            elif f[0] in (401, 407) and not dlg.auth_requests:
                problem = problem or "challenge unanswered"
                self.note("call_failed", dlg, f"{who}: {f[0]} {f[1]} and the caller never "
                          "answered the challenge (no credentials configured?)")
            elif f[0] in USER_OUTCOMES:
                self.note("call_declined", dlg, f"{who}: {f[0]} {f[1]} — {meaning(f[0])}")
            else:
                problem = problem or f"{f[0]}"
                self.note("call_failed", dlg, f"{who}: {f[0]} {f[1]} — {meaning(f[0])}")
        elif dlg.kind not in ("ACK", "CANCEL"):
            if f is None and not (dlg.open_at_end and since_first < 32):
                self.note("request_no_answer", dlg, f"{who}: {dlg.kind} {dlg.src} → {dlg.dst} "
                          "never answered")
            elif f is not None and f[0] >= 400 and f[0] not in (401, 407):
                self.note("request_failed", dlg, f"{who}: {dlg.kind} got {f[0]} {f[1]} — "
                          f"{meaning(f[0])}")
        copies = dlg.max_request_copies
        if copies >= 4:
            problem = problem or "retransmissions"
            self.note("retransmissions", dlg, f"{who}: a {dlg.kind} transaction sent "
                      f"{copies} times")
        ok_copies = max((n for (_, status, m), n in dlg.responses.items()
                         if m == "INVITE" and 200 <= status < 300), default=0)
        if ok_copies >= 3:
            problem = problem or "2xx retransmitted"
            self.note("ok_retransmissions", dlg, f"{who}: 200 OK sent {ok_copies} times — "
                      "the ACK does not reach the callee")
        for text in dlg.private_sdp:
            self.note("private_sdp", dlg, f"{who}: {text}")
        for text in dlg.nat[:1]:
            self.note("nat", dlg, f"{who}: {text}")
        return problem

    def _media(self, dlg: Dialog, who: str) -> str | None:
        to_caller, to_callee = dlg.rtp["to_caller"], dlg.rtp["to_callee"]
        counts = f"{to_callee} RTP packets caller→callee, {to_caller} callee→caller"
        if to_caller and to_callee:
            self.note("audio_ok", None, f"{who}: {counts}")
            return None
        if dlg.hold:
            self.note("audio_hold", None, f"{who}: {counts} (SDP asked for one way / hold)")
            return None
        if not to_caller and not to_callee:
            self.note("no_audio", dlg, f"{who}: no RTP either way")
            return "no audio"
        silent = "callee" if not to_caller else "caller"
        self.note("one_way_audio", dlg, f"{who}: no RTP from the {silent} ({counts})")
        return "one-way audio"

    # -- checks ---------------------------------------------------------------------------
    def report(self, path: str, stats: ReadStats, tracker: Tracker, seconds: float) -> Report:
        t, ex = self.totals, (lambda key: self.examples.get(key, []))
        for (aor, ip), (rejected, dialogs, dlg) in self.aor_rejects.items():
            if rejected >= 3 and dialogs >= 2:
                self.note("auth_loop", dlg, f"{aor} from {ip}: {rejected} authenticated "
                          f"attempts rejected over {dialogs} Call-IDs")
        checks: list[CheckResult] = []

        def add(cid: str, status: str, summary: str, hint: str | None = None,
                keys: tuple[str, ...] = (), **details) -> None:
            examples = [e for k in keys for e in ex(k)][:MAX_EXAMPLES * 2]
            if examples:
                details["examples"] = examples
            evidence = next((self.ladders[k] for k in keys if k in self.ladders), []) \
                if status in ("warn", "fail") else []
            checks.append(CheckResult(id=cid, status=status, summary=summary, hint=hint,
                                      details=details, evidence=evidence))

        dialogs = sum(v for k, v in t.items() if k.startswith("kind:"))
        cap = (f"{stats.packets} packets, {tracker.sip_messages} SIP messages, {dialogs} "
               f"Call-IDs, {tracker.rtp_packets} RTP packets")
        if not tracker.rtp_packets:
            # No RTP anywhere (sipkit's own --pcap, a capture filtered to signalling): a call's
            # media cannot be judged, so "no audio" would send people the wrong way.
            for r in self.rows:
                if r["problem"] == "no audio":
                    r["problem"], r["media"] = None, MEDIA_NOT_CAPTURED
        rows = sorted(self.rows, key=lambda r: r["problem"] is None)
        cap_details = {
            "packets": stats.packets, "sip_messages": tracker.sip_messages,
            "call_ids": dialogs, "rtp_packets": tracker.rtp_packets,
            "rtp_unmatched": tracker.unmatched_rtp, "ip_fragments": stats.ip_fragments,
            "reassembled": stats.reassembled, "tls_flows": tracker.tls_flows,
            "parse_errors": tracker.parse_errors, "first_parse_error": tracker.first_error,
            "internal_errors": tracker.internal_errors,
            "truncated": stats.truncated, "read_error": stats.error,
            "answers_without_request": t.get("before_capture", 0),
            "kinds": {k[5:]: v for k, v in t.items() if k.startswith("kind:")},
            "dialogs": rows}
        if stats.truncated:
            add("capture", "warn", f"partial analysis: the capture ends early or is corrupt "
                f"({stats.error or 'truncated'}); read {cap}",
                "capture again and stop tcpdump/tshark cleanly (Ctrl-C) before copying the "
                "file; what was read is analysed below", **cap_details)
        elif tracker.sip_messages == 0:
            add("capture", "warn", f"no SIP found in {stats.packets} packets"
                + (f" ({tracker.tls_flows} TLS flows: encrypted)" if tracker.tls_flows else ""),
                "capture on the PBX's SIP port (udp/tcp 5060); SIP over TLS cannot be read from "
                "the wire: use `sipkit check --pcap`, or capture decrypted on the PBX",
                **cap_details)
        elif tracker.internal_errors:
            add("capture", "warn", f"{tracker.internal_errors} packet(s) could not be analysed "
                f"(first: {tracker.first_error}); read {cap}", "the rest of the analysis stands; "
                "please report this with the capture (SIPKIT_DEBUG=1)", **cap_details)
        else:
            add("capture", "pass", cap + (f" ({tracker.parse_errors} malformed SIP message(s) "
                                          "skipped)" if tracker.parse_errors else "")
                + (f" ({t['before_capture']} Call-ID(s) with answers only: begun before the "
                   "capture, not judged)" if t.get("before_capture") else ""), **cap_details)

        self._auth_and_registration(add, t, ex)
        self._calls(add, t, ex, tracker)
        self._paths(add, t, ex, tracker)
        rank = {"error": 0, "fail": 1, "warn": 2, "pass": 3, "skip": 4}
        order = ["auth_loop", "registration", "call_setup", "one_way_audio",
                 "sdp_private_address", "nat_rewrite", "retransmissions", "requests"]
        checks.sort(key=lambda c: (c.id != "capture", rank[c.status],
                                   order.index(c.id) if c.id in order else 99))
        return Report(target={"capture": path}, checks=checks).finish(seconds * 1000)

    def _auth_and_registration(self, add, t, ex) -> None:
        if t.get("auth_loop"):
            add("auth_loop", "fail", f"{t['auth_loop']} authentication loop(s): credentials "
                f"sent again and again and rejected each time — {ex('auth_loop')[0]}",
                "wrong password, auth username or realm, and a client that retries into a "
                "lockout: stop the client, fix the credentials (the PBX may already have banned "
                "the source), then register once", keys=("auth_loop",), loops=t["auth_loop"])
        elif any(k in t for k in ("register_ok", "register_failed", "call_answered",
                                  "call_failed")):
            add("auth_loop", "pass", "no authentication loop: no credentials were rejected "
                "more than once")
        regs = ("register_ok", "register_failed", "register_no_answer", "register_unfinished")
        if not any(k in t for k in regs):
            return
        ok, failed, silent, cut = (t.get(k, 0) for k in regs)
        counts = {"succeeded": ok, "failed": failed, "unanswered": silent, "unfinished": cut}
        if failed or silent:
            first = (ex("register_failed") or ex("register_no_answer"))[0]
            add("registration", "fail", f"{failed + silent} registration(s) failed, {ok} "
                f"succeeded — {first}",
                "403: wrong password, or the PBX does not allow this user/source address; "
                "404: unknown extension (username_extension); no answer: a firewall or the "
                "wrong address/port/transport", keys=("register_failed", "register_no_answer"),
                **counts)
        elif ok:
            add("registration", "pass", f"{ok} registration(s) succeeded"
                + (f", {cut} cut off by the end of the capture" if cut else ""),
                keys=("register_ok",), **counts)
        else:
            add("registration", "skip", f"{cut} registration(s) cut off by the end of the "
                "capture: outcome unknown", **counts)

    def _calls(self, add, t, ex, tracker: Tracker) -> None:
        outcomes = ("call_answered", "call_failed", "invite_no_final", "call_cancelled",
                    "call_declined", "call_no_ack", "reinvite_failed", "call_unfinished")
        if any(k in t for k in outcomes):
            counts = {k[5:] if k.startswith("call_") else k: t.get(k, 0) for k in outcomes}
            first = next((row for row in CALL_PROBLEMS if t.get(row[0]) and not (
                row[0] == "call_declined" and t.get("call_answered"))), None)
            if first:
                key, status, what, hint = first
                add("call_setup", status, f"{t[key]} {what} — {ex(key)[0]}", hint,
                    keys=tuple(row[0] for row in CALL_PROBLEMS), **counts)
            else:
                extra = "".join(f", {t[k]} {w}" for k, w in (("call_cancelled", "cancelled"),
                                                              ("call_declined", "declined"),
                                                              ("call_unfinished",
                                                               "in progress at the end"))
                                if t.get(k))
                status = "pass" if t.get("call_answered") or t.get("call_cancelled") else "skip"
                add("call_setup", status, f"{t.get('call_answered', 0)} call(s) answered{extra}",
                    keys=("call_answered",), **counts)
        if t.get("call_answered"):
            counts = {"both_ways": t.get("audio_ok", 0), "one_way": t.get("one_way_audio", 0),
                      "none": t.get("no_audio", 0), "hold": t.get("audio_hold", 0)}
            if not tracker.rtp_packets:
                add("one_way_audio", "skip", f"{MEDIA_NOT_CAPTURED} (filtered to signalling, "
                    "or written by sipkit check --pcap): media not judged", **counts)
            elif t.get("one_way_audio") or t.get("no_audio"):
                first = (ex("one_way_audio") or ex("no_audio"))[0]
                add("one_way_audio", "fail", f"{t.get('one_way_audio', 0)} one-way and "
                    f"{t.get('no_audio', 0)} no-audio call(s) — {first}",
                    "RTP from one side never arrives: a firewall closed for the RTP ports, NAT "
                    "with a private address in SDP, or a SIP ALG rewriting SDP; check the "
                    "silent side's c=/m= and its firewall", keys=("one_way_audio", "no_audio"),
                    **counts)
            else:
                add("one_way_audio", "pass", f"RTP both ways in {t.get('audio_ok', 0)} "
                    "answered call(s)", **counts)

    def _paths(self, add, t, ex, tracker: Tracker) -> None:
        if t.get("private_sdp"):
            add("sdp_private_address", "warn", f"private media address in SDP — "
                f"{ex('private_sdp')[0]}", "the far end cannot send RTP to a private address: "
                "set the PBX's external/public media address (or STUN), or have the server "
                "relay media; a SIP ALG may also be rewriting only half the message",
                keys=("private_sdp",), messages=t["private_sdp"])
        elif tracker.sdp_seen:
            add("sdp_private_address", "pass", "no private address in SDP sent over public "
                "signalling")
        if tracker.sip_messages == 0:
            return
        if t.get("nat"):
            add("nat_rewrite", "warn", f"NAT between the sender and the capture point in "
                f"{t['nat']} Call-ID(s) — {ex('nat')[0]}",
                "the server must answer to the source address (rport, RFC 3581) and reach the "
                "phone there for inbound calls (keep-alives); Contact and SDP must carry "
                "reachable addresses; turn off any SIP ALG", keys=("nat",), call_ids=t["nat"])
        else:
            add("nat_rewrite", "pass", "Via sent-by matches the source address of every request")
        retrans = t.get("retransmissions", 0) + t.get("ok_retransmissions", 0)
        if retrans:
            add("retransmissions", "warn", f"{retrans} retransmission storm(s) — "
                f"{(ex('retransmissions') or ex('ok_retransmissions'))[0]}",
                "answers (or ACKs) are lost or late: packet loss, a firewall dropping one "
                "direction, fragmented UDP dropped (large INVITEs: use TCP), or an overloaded "
                "server", keys=("retransmissions", "ok_retransmissions"),
                requests=t.get("retransmissions", 0), ok_without_ack=t.get("ok_retransmissions",
                                                                           0))
        else:
            add("retransmissions", "pass", "no transaction sent 4 times or more")
        if t.get("request_failed") or t.get("request_no_answer"):
            bad = t.get("request_failed", 0) + t.get("request_no_answer", 0)
            add("requests", "warn", f"{bad} other request(s) refused or unanswered — "
                f"{(ex('request_failed') or ex('request_no_answer'))[0]}",
                "see the status meaning; OPTIONS keep-alives without answer mean the path or "
                "the server is down", keys=("request_failed", "request_no_answer"))
