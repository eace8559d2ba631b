"""Test calls with media: pjsua2 in a worker process, RTP stats, MOS, audio verdicts."""
