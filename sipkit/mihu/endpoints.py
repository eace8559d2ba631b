"""Every path sipkit calls, in one place.

Facts (seeds/000, the docs index): create is POST /api/v1/pbx_extension_connectors; get one is
GET .../{uuid}; the docs list endpoints titled "list", "delete", "get the SIP connector server
assigned to your account", "allocate" and "release". INFERENCE: the exact paths of the last
five (mihu-api.md §8). Correct them here and nothing else changes.

SIP trunks (mihu-api.md §2, §3, §7; seed 004 lists the endpoints, seed 003 the /sip-trunks API):
facts and inferences are marked per line.
"""

BASE = "/api/v1/pbx_extension_connectors"
CONNECTORS = BASE                          # POST create (fact), GET list (inference)
CONNECTOR = BASE + "/{uuid}"               # GET one (fact), DELETE (inference)
SERVER = BASE + "/sip_connector_server"    # GET / POST allocate / DELETE release (inference)

# Mihu SIP-trunk connections (§2). The docs index titles "List all SIP trunk connections" and
# "Delete a SIP trunk connection" but their pages were not readable.
TRUNK_CONNECTIONS = "/api/v1/channels/sip-trunk/connections"  # POST (fact), GET list (inference)
TRUNK_CONNECTION = TRUNK_CONNECTIONS + "/{uuid}"              # DELETE (inference)
AGENT_SIP_TRUNK = "/api/v1/agents/{uuid}/channels/call/sip-trunk"  # POST assign (fact)

# Mihu external (BYO) trunks (§3), keyed by (phone_number, channel), no UUID in the path.
BYO_TRUNKS = "/api/v1/phone-numbers/trunks"  # POST, PATCH, GET list (fact); DELETE ?phone_number=
                                             # &channel= (inference: the page shows only a title)
BYO_TRUNK_ASSIGN = BYO_TRUNKS + "/assign"    # PUT (fact)

# The /sip-trunks API of seed 003 (§7; its base is https://api.hmsovereign.com/api/v1).
SIP_TRUNKS = "/api/v1/sip-trunks"            # GET list, POST create (fact)
SIP_TRUNK = SIP_TRUNKS + "/{id}"             # GET one, DELETE (fact)

# Calls. Fact (mihu-api.md §5, the quickstart): POST /api/v1/call with {agentId, participant:
# {number}} answers data{id, status: "initiated", ...}. INFERENCE: that such a call leaves
# through the agent's PBX extension connector (the optional pbx_extension_connector_uuid
# names it), and GET .../{id} with status and the far end's SIP answer (sip_code, sip_reason).
CALLS = "/api/v1/call"                     # POST place a call (fact)
CALL = CALLS + "/{id}"                     # GET one call (inference)
