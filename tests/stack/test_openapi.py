"""The OpenAPI document the Worker serves: valid OpenAPI 3.1, every route of the table in it."""

from openapi_spec_validator import validate

from gpu_export import Client


def test_the_document_is_valid_openapi_3_1_and_covers_every_route(stack):
    with Client(stack.url) as client:
        doc = client.request("GET", "/api/openapi.json")
    validate(doc)
    assert doc["openapi"] == "3.1.0" and doc["servers"] == [{"url": stack.url}]
    operations = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    assert ("POST", "/api/jobs") in operations and ("POST", "/api/pod/jobs/{job_id}/claim") in operations
    create = doc["paths"]["/api/jobs"]["post"]
    assert create["security"] == [{"user": []}]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/JobSpec"}
    assert set(create["responses"]) == {"200", "202", "4XX"}
    assert doc["components"]["schemas"]["JobSpec"]["discriminator"]["propertyName"] == "type"
    assert "JobEvent" in doc["components"]["schemas"]
