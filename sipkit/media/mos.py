"""A listening-quality MOS estimate from the ITU-T G.107 E-model, simplified for planning.

With every G.107 parameter at its default, the basic signal-to-noise term and the
simultaneous impairments give Ro − Is = 93.2 and the advantage factor A is 0, so only the
delay (Id) and equipment (Ie,eff) impairments are left (Cole & Rosenbluth, "Voice over IP
performance monitoring", 2001, fitted to G.107):

    R      = 93.2 − Id − Ie,eff
    Id     = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3)       d: one-way mouth-to-ear delay, ms
                                                           H(x) = 1 if x > 0 else 0
    Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl)   G.107 §7.4; Ppl: packet loss %,
                                                           BurstR = 1 (random loss)
    MOS    = 1                                        R < 6.5
             1 + 0.035·R + R·(R − 60)·(100 − R)·7e-6  6.5 ≤ R ≤ 100 (G.107 Annex B)
             4.5                                      R > 100

(The cubic dips just below 1 for 0 < R < 6.5; later editions of G.107 start it at 6.5, which
keeps MOS monotonic in R.)

Reference points: R = 93.2 (no loss, no delay) → MOS 4.41; R = 80 → 4.02; R = 70 → 3.60;
R = 50 → 2.58; R < 6.5 → 1.0.

Ie and Bpl per codec come from ITU-T G.113 Appendix I where it lists them (G.711 with packet
loss concealment, as pjmedia runs it; G.729A; G.723.1; GSM-EFR). The others are marked
approximate. Wideband codecs (G.722, Opus) are rated on this narrowband scale as G.711 would
be: G.107 cannot credit them, so their MOS is conservative. An unknown codec is rated as G.711.
"""

from __future__ import annotations

from typing import NamedTuple

R_DEFAULT = 93.2


class CodecImpairment(NamedTuple):
    ie: float  # equipment impairment factor
    bpl: float  # packet-loss robustness factor
    source: str


G113 = "ITU-T G.113 Appendix I"
APPROX = "approximate (not in G.113 Appendix I)"
CODECS: dict[str, CodecImpairment] = {
    "PCMU": CodecImpairment(0.0, 25.1, G113 + " (G.711 with PLC)"),
    "PCMA": CodecImpairment(0.0, 25.1, G113 + " (G.711 with PLC)"),
    "G729": CodecImpairment(11.0, 19.0, G113 + " (G.729A + VAD)"),
    "G723": CodecImpairment(15.0, 16.1, G113 + " (G.723.1 6.3 kbit/s + VAD)"),
    "GSM-EFR": CodecImpairment(5.0, 10.0, G113 + " (GSM-EFR)"),
    "GSM": CodecImpairment(20.0, 10.0, "Ie " + G113 + " (GSM-FR); Bpl " + APPROX),
    "ILBC": CodecImpairment(11.0, 32.0, APPROX),
    "SPEEX": CodecImpairment(11.0, 20.0, APPROX),
    "G722": CodecImpairment(0.0, 25.1, "wideband, rated as G.711"),
    "OPUS": CodecImpairment(0.0, 25.1, "wideband, rated as G.711"),
}


def impairment(codec: str | None) -> tuple[str, CodecImpairment]:
    """("PCMU", ...) for "PCMU/8000"; unknown or missing codecs are rated as G.711."""
    name = (codec or "PCMU").split("/")[0].upper()
    if name == "G7221" or name.startswith("G722"):
        name = "G722"
    if name in CODECS:
        return name, CODECS[name]
    return name, CodecImpairment(0.0, 25.1, f"unknown codec {name}: rated as G.711")


def delay_impairment(one_way_delay_ms: float) -> float:
    d = max(0.0, one_way_delay_ms)
    return 0.024 * d + (0.11 * (d - 177.3) if d > 177.3 else 0.0)


def loss_impairment(loss_pct: float, ie: float, bpl: float, burst_r: float = 1.0) -> float:
    ppl = max(0.0, min(100.0, loss_pct))
    return ie + (95.0 - ie) * ppl / (ppl / burst_r + bpl)


def r_factor(one_way_delay_ms: float, loss_pct: float, codec: str | None = "PCMU") -> float:
    _, imp = impairment(codec)
    return R_DEFAULT - delay_impairment(one_way_delay_ms) - loss_impairment(loss_pct, imp.ie,
                                                                           imp.bpl)


def mos_from_r(r: float) -> float:
    if r < 6.5:
        return 1.0
    if r > 100:
        return 4.5
    return max(1.0, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6)


def mos(one_way_delay_ms: float, loss_pct: float, codec: str | None = "PCMU") -> float:
    """MOS (1.0–4.5, two decimals) for a one-way delay in ms and a packet loss in %."""
    return round(mos_from_r(r_factor(one_way_delay_ms, loss_pct, codec)), 2)


def one_way_delay(rtt_ms: float | None, jitter_buffer_ms: float | None,
                  packet_ms: float = 20.0) -> float:
    """Mouth-to-ear delay estimate: half the RTCP round trip (0 when RTCP gave none, which
    makes the MOS an upper bound), one packet of audio, and the jitter buffer's delay."""
    return (rtt_ms or 0.0) / 2 + packet_ms + (jitter_buffer_ms or 0.0)
