"""`sipkit reflector`: the outside view of a PBX, before any connector exists.

A small service on the internet (next to the SIP connector servers) that sipkit asks, over an
HTTPS/JSON API, to look at the site from outside:

    config    the reflector's own settings file (listen, TLS, public address, limits)
    tokens    bearer tokens: names, hashes, the extra targets an entry may probe
    policy    who may ask what: allowed targets, rate limits (never a scanner or amplifier)
    outside   OPTIONS and an unauthenticated REGISTER to the registrar, its DNS, its TLS
    sipside   the reflector's own SIP sockets: mirror captures and NAT binding flows
    app       the aiohttp application (routes, auth, request log)
    server    start everything, serve until stopped
    client    the agent side: what the checks outside_reach / sip_alg / nat_binding call

The server side imports sipkit's sip/ and net/ layers (one SIP stack); the agent side needs
only httpx. Nothing here ever handles a SIP password.
"""
