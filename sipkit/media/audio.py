"""What the received audio was: silence, noise, or the test tone we sent (pure, stdlib only).

The worker records what it hears into a WAV file while it sends a tone; this reads the samples
in 20 ms windows and asks, per window, whether it is silent (RMS under ``SILENCE_DBFS``) and
whether the tone dominates it (Goertzel power at the tone's frequency over the window's total
energy, ``TONE_RATIO``). The shares of such windows are what a verdict can stand on: an echo
that returns our tone is audio that really arrives; RTP full of silence or of noise is not.
Imported by the worker: no pydantic, nothing heavy.
"""

from __future__ import annotations

import math

WINDOW_S = 0.02
SILENCE_DBFS = -50.0  # G.711 silence decodes to 0/±8 of 32768: far below; speech is above -40
TONE_RATIO = 0.5  # the tone holds at least half of a window's energy
WARMUP_S = 0.3  # the echo's round trip and the jitter buffer's fill: not judged


def goertzel_ratio(samples: list[int], rate: int, hz: float) -> float:
    """Share (0..1) of the window's energy at ``hz`` (a pure tone gives ~1)."""
    n = len(samples)
    energy = sum(s * s for s in samples)
    if n == 0 or energy == 0:
        return 0.0
    k = round(n * hz / rate)
    coeff = 2 * math.cos(2 * math.pi * k / n)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    return min(1.0, 2 * power / (n * energy))


def dbfs(samples: list[int]) -> float:
    if not samples:
        return -120.0
    rms = math.sqrt(sum(s * s for s in samples) / len(samples))
    return 20 * math.log10(rms / 32768) if rms > 0 else -120.0


def analyse(samples: list[int], rate: int, tone_hz: float | None,
            start_s: float = WARMUP_S, marks: dict[str, float] | None = None,
            exclude: list[tuple[float, float]] = ()) -> dict:
    """Shares of non-silent and tone windows from ``start_s`` on; with ``marks``
    ({"resumed": 1.8}), the tone share from each mark on as ``tone_share_after_<name>``.
    ``tone_share_judged`` leaves out the ``exclude`` spans (seconds): while we send RFC 4733
    events instead of audio, or hold, no tone is due back."""
    step = max(1, int(rate * WINDOW_S))
    windows = []  # (start second, silent, tone)
    for i in range(int(start_s * rate), len(samples) - step + 1, step):
        w = samples[i:i + step]
        level = dbfs(w)
        silent = level < SILENCE_DBFS
        tone = bool(tone_hz) and not silent and goertzel_ratio(w, rate, tone_hz) >= TONE_RATIO
        windows.append((i / rate, silent, tone, level))
    n = len(windows)
    out = {"seconds": round(len(samples) / rate, 2) if rate else 0.0, "windows": n,
           "nonsilent_share": round(sum(not w[1] for w in windows) / n, 3) if n else 0.0,
           "tone_hz": tone_hz,
           "tone_share": round(sum(w[2] for w in windows) / n, 3) if n and tone_hz else None,
           "level_dbfs": round(max((w[3] for w in windows), default=-120.0), 1)}
    judged = [w for w in windows if not any(a <= w[0] < b for a, b in exclude)]
    out["tone_share_judged"] = (round(sum(w[2] for w in judged) / len(judged), 3)
                                if judged and tone_hz else None)
    out["nonsilent_share"] = (round(sum(not w[1] for w in judged) / len(judged), 3)
                              if judged else out["nonsilent_share"])
    for name, at in (marks or {}).items():
        after = [w for w in windows if w[0] >= at]
        out[f"tone_share_after_{name}"] = (round(sum(w[2] for w in after) / len(after), 3)
                                           if after and tone_hz else None)
    return out


def read_wav(path: str) -> tuple[list[int], int]:
    """Mono 16-bit samples and the rate of the WAV file pjmedia's recorder writes, also while
    it is still open: its header's lengths are filled in only at close, so the chunks are
    walked here and a data chunk runs to the end of what is on disk."""
    import array
    import struct

    with open(path, "rb") as f:
        raw = f.read()
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError("not a WAV file")
    i, rate, width, channels = 12, 0, 0, 1
    while i + 8 <= len(raw):
        name, size = raw[i:i + 4], struct.unpack_from("<I", raw, i + 4)[0]
        if name == b"fmt ":
            _, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", raw, i + 8)
            width = bits // 8
        elif name == b"data":
            body = raw[i + 8:] if size == 0 else raw[i + 8:i + 8 + size]
            break
        i += 8 + size + (size & 1)
    else:
        raise ValueError("the WAV file has no data chunk")
    if width != 2 or not rate:
        raise ValueError(f"expected 16-bit samples, got {8 * width}-bit")
    data = array.array("h")
    data.frombytes(body[: len(body) - len(body) % 2])
    if channels > 1:
        data = data[::channels]
    return list(data), rate
