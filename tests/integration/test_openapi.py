"""The sandbox and the client against the repo's OpenAPI document."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

import sipkit.mihu
from tests.integration.test_mihu import SERVER_IP, TOKEN, client, sandbox, site  # noqa: F401

SPEC = Path(sipkit.mihu.__file__).parent / "openapi.yaml"


def _schema(name: str) -> dict:
    spec = yaml.safe_load(SPEC.read_text())
    # resolve local $refs by bundling components into the schema
    return {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}


def test_schemathesis_against_sandbox(sandbox):  # noqa: F811
    url, _ = sandbox
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    proc = subprocess.run(
        [st, "run", str(SPEC), "--url", url, "-H", f"Authorization: Bearer {TOKEN}",
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
         "response_schema_conformance", "--phases", "examples,coverage,fuzzing",
         "--max-examples", "8", "-w", "1", "--seed", "1", "--no-color"],
        capture_output=True, text=True, timeout=400)  # 20 operations; a loaded machine
    tail = proc.stdout[-3000:]
    assert proc.returncode == 0, tail
    assert "Tested: 22" in proc.stdout  # + the 2 call operations


def test_client_objects_match_the_spec(sandbox):  # noqa: F811
    url, _ = sandbox
    with client(url) as c:
        c.allocate_server()
        conn = c.create_connector(site(auth_username="x", auth_password="pw-x-123").api_body())
        page = c.list_connectors()
    jsonschema.validate(conn.model_dump(mode="json", exclude_none=True), _schema("Connector"))
    jsonschema.validate(page.pagination.model_dump(), _schema("Pagination"))
    body = site().api_body()
    jsonschema.validate(body, _schema("CreateConnector"))  # what the client sends


def test_trunk_bodies_and_objects_match_the_spec(sandbox):  # noqa: F811
    from sipkit.mihu.trunk_provision import body, ensure_trunk
    from tests.integration.test_trunk_api import trunk

    url, server = sandbox
    with client(url) as c:
        for api, request, answer in (("mihu", "CreateTrunkConnection", "TrunkConnection"),
                                     ("mihu_byo", "CreateByoTrunk", "ByoTrunk"),
                                     ("sip_trunks", "CreateSipTrunkDocs", "SipTrunk")):
            site = trunk(api, secondary_gateway="sip2.telnyx.com")
            jsonschema.validate(body(site)[0], _schema(request))  # what the client sends
            made, _, _ = ensure_trunk(c, site)
            jsonschema.validate(made.model_dump(mode="json", exclude_none=True), _schema(answer))
        server.sandbox.trunks.shape = "sdk"
        sdk = c._send("GET", "/api/v1/sip-trunks", retry=True)["trunks"][0]
        # (jsonschema does not read OpenAPI's nullable: nulls are left out, as above)
        jsonschema.validate({k: v for k, v in sdk.items() if v is not None}, _schema("SipTrunk"))
        assert "address" in sdk and "auth_username" in sdk
