"""Did the PBX ban us during this run? Pure: reads the run's RequestLog.

Intrusion protection (fail2ban, FreePBX Responsive Firewall, Yeastar IP Auto Defense, 3CX
anti-hacking, Avaya IP Office blacklisting, Kamailio pike/htable) acts per source address: after
N requests (or N failures) every further packet is dropped or rejected. Seen from one run,
that is a PBX that **answered**, then from one request on **never again** — or that answered a
kind of request normally and then refused that same kind for the rest of the run.

A port that never answered is not a ban (the transport check explains that); neither is one
lost padded OPTIONS (a path dropping IP fragments: transport's own warning), which is why
padded requests never start a silence here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .requestlog import RequestLog, Sent

REFUSALS = (403, 429, 503)


@dataclass
class BanFinding:
    remote: str
    local: str
    after: int  # requests this source sent to the PBX before it went silent / refused
    mode: str  # "silent" | "refusing"
    first: Sent  # the first request that was dropped or refused
    unanswered: int  # requests after that point
    seconds: float  # from our first request to the first dropped one
    confirmed: bool | None = None  # a later OPTIONS went unanswered too (sipkit.pbx.confirm)

    def describe(self) -> str:
        what = ("stopped answering" if self.mode == "silent" else
                f"started refusing ({self.first.answer.status} {self.first.answer.reason})"
                if self.first.answer else "started refusing")
        return (f"{self.remote} {what} at the {_ordinal(self.after + 1)} ({self.first.method}, "
                f"{self.seconds:.1f} s into the run; {self.unanswered} request(s) affected)")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def detect(log: RequestLog) -> BanFinding | None:
    """Per PBX address (one run has one source address; a failed connect may not know it)."""
    by_peer: dict[str, list[Sent]] = {}
    for s in log.sent:
        by_peer.setdefault(s.remote, []).append(s)
    findings = []
    for remote, seq in by_peer.items():
        local = next((s.local for s in seq if s.local), "")
        f = _one(local, remote, sorted(seq, key=lambda s: s.at))
        if f is not None:
            findings.append(f)
    return min(findings, key=lambda f: f.first.at) if findings else None


def _one(local: str, remote: str, seq: list[Sent]) -> BanFinding | None:
    if not any(s.answered for s in seq):
        return None  # never answered: a closed or filtered port, not a ban
    return _silence(local, remote, seq) or _refusal(local, remote, seq)


def _silence(local: str, remote: str, seq: list[Sent]) -> BanFinding | None:
    last_answered = max(i for i, s in enumerate(seq) if s.answered)
    tail = seq[last_answered + 1:]
    if not tail or all(s.padded for s in tail):
        return None
    k = last_answered + 1
    return BanFinding(remote=remote, local=local, after=k, mode="silent", first=seq[k],
                      unanswered=len(tail), seconds=seq[k].at - seq[0].at)


def _refusal(local: str, remote: str, seq: list[Sent]) -> BanFinding | None:
    """A kind of request (method, with or without credentials) answered normally, later
    refused, and nothing but refusals or silence from there on."""
    ok_kinds: dict[tuple[str, bool], int] = {}
    for i, s in enumerate(seq):
        kind = (s.method, s.authenticated)
        refused = s.answer is not None and s.answer.status in REFUSALS
        if refused and kind in ok_kinds:
            rest = seq[i:]
            if all(r.answer is None or r.answer.status in REFUSALS for r in rest):
                return BanFinding(remote=remote, local=local, after=i, mode="refusing",
                                  first=s, unanswered=len(rest), seconds=s.at - seq[0].at)
        if s.answer is not None and s.answer.status not in REFUSALS:
            ok_kinds.setdefault(kind, i)
    return None
