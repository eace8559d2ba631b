"""Every path sipkit calls, in one place.

Facts (seeds/000, the docs index): create is POST /api/v1/pbx_extension_connectors; get one is
GET .../{uuid}; the docs list endpoints titled "list", "delete", "get the SIP connector server
assigned to your account", "allocate" and "release". INFERENCE: the exact paths of the last
five (mihu-api.md §8). Correct them here and nothing else changes.
"""

BASE = "/api/v1/pbx_extension_connectors"
CONNECTORS = BASE                          # POST create (fact), GET list (inference)
CONNECTOR = BASE + "/{uuid}"               # GET one (fact), DELETE (inference)
SERVER = BASE + "/sip_connector_server"    # GET / POST allocate / DELETE release (inference)

# Calls. Fact (mihu-api.md §5, the quickstart): POST /api/v1/call with {agentId, participant:
# {number}} answers data{id, status: "initiated", ...}. INFERENCE: that such a call leaves
# through the agent's PBX extension connector (the optional pbx_extension_connector_uuid
# names it), and GET .../{id} with status and the far end's SIP answer (sip_code, sip_reason).
CALLS = "/api/v1/call"                     # POST place a call (fact)
CALL = CALLS + "/{id}"                     # GET one call (inference)
