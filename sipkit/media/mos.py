"""MOS estimate from the ITU-T G.107 E-model, simplified (as G.107 Annex / G.113 suggest for
planning): R = 93.2 - Id - Ie_eff, with defaults for everything not measured.

    Id     = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)      d: one-way mouth-to-ear delay, ms
    Ie_eff = Ie + (95 - Ie) * Ppl / (Ppl + Bpl)            Ppl: packet loss %, random loss
    MOS    = 1 + 0.035 R + R (R - 60) (100 - R) 7e-6       for 0 < R < 100

Ie and Bpl per codec from ITU-T G.113 Appendix I (G.711 with packet loss concealment).
"""

from __future__ import annotations

# codec -> (Ie, Bpl)
CODECS = {
    "PCMU": (0.0, 25.1), "PCMA": (0.0, 25.1),
    "G722": (0.0, 25.1),  # wideband on a narrowband scale: treat as G.711
    "GSM": (20.0, 10.0), "ILBC": (11.0, 32.0), "G729": (11.0, 19.0), "SPEEX": (11.0, 20.0),
    "OPUS": (0.0, 25.1),
}


def r_factor(one_way_delay_ms: float, loss_pct: float, codec: str = "PCMU") -> float:
    ie, bpl = CODECS.get(codec.upper().split("/")[0], CODECS["PCMU"])
    d = max(0.0, one_way_delay_ms)
    i_d = 0.024 * d + (0.11 * (d - 177.3) if d > 177.3 else 0.0)
    ppl = max(0.0, min(100.0, loss_pct))
    ie_eff = ie + (95 - ie) * ppl / (ppl + bpl)
    return 93.2 - i_d - ie_eff


def mos_from_r(r: float) -> float:
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6


def mos(one_way_delay_ms: float, loss_pct: float, codec: str = "PCMU") -> float:
    return round(mos_from_r(r_factor(one_way_delay_ms, loss_pct, codec)), 2)
