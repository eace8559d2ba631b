"""Know the PBX: who it is (fingerprint), what its answers mean (knowledge base), whether it
banned us (ban), how fast to talk to it (pacing), and what to set on it (config).

Pure layers except ``apply`` (the post-pass over a finished report). Imports: sipkit.sip,
sipkit.report, sipkit.settings; never sipkit.checks (checks import ``requestlog`` from here).
"""
