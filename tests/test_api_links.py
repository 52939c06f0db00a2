"""The OpenAPI links of the contract-first documents: every resource created points to
what reads it and what acts on it, and schemathesis's stateful phase walks them
(create -> read -> act) against the application in process."""

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.test_api_fuzzing import auth_header, billing_api  # noqa: F401 - a fixture

PRICED_ITEM = {"label": "Paris-Nice", "quantity": 1, "unit_amount": 100, "vat_rate": "0"}
OPENAPI_DIR = Path(__file__).resolve().parent.parent / "openapi"

EXPECTED_LINKS = {
    ("contracts", "createCustomer"): {"getCustomer"},
    ("contracts", "subscribeContract"): {
        "getContract",
        "amendContract",
        "suspendContract",
        "reactivateContract",
        "cancelContract",
        "renewMandate",
        "revokeMandate",
        "registerSubscriber",
    },
    ("billing", "submitOperation"): {"getOperation", "listContractOperations", "getContractBalance"},
    ("invoicing", "startBillingRun"): {"getBillingRun"},
    ("invoicing", "invoiceContractEarly"): {"getBillingRun"},
}


def operations(document: dict) -> dict[str, dict]:
    return {
        operation["operationId"]: {**operation, "_path": path}
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    }


@pytest.mark.parametrize(("document", "operation_id"), sorted(EXPECTED_LINKS))
def test_each_created_resource_links_to_what_reads_it_and_acts_on_it(document, operation_id):
    spec = yaml.safe_load((OPENAPI_DIR / f"{document}.yaml").read_text())
    by_id = operations(spec)
    responses = by_id[operation_id]["responses"]
    links = {
        link["operationId"]: link
        for status, response in responses.items()
        if status.startswith("2")
        for link in response.get("links", {}).values()
    }
    assert set(links) == EXPECTED_LINKS[(document, operation_id)]
    for target, link in links.items():
        assert target in by_id, f"{target} is in no operation of {document}.yaml"
        path_params = {part[1:-1] for part in by_id[target]["_path"].split("/") if part.startswith("{")}
        assert set(link["parameters"]) == path_params
        assert all(value.startswith("$response.body#/") for value in link["parameters"].values())


@pytest.mark.django_db
def test_the_stateful_phase_walks_from_a_submitted_operation_to_reading_it(auth_header):  # noqa: F811
    headers, contract = auth_header
    walked: list[tuple[str, int]] = []

    class Walk(billing_api.as_state_machine()):
        def before_call(self, case):
            (case.headers or {}).pop("Authorization", None)  # the key is given per call, as a client does
            if case.operation.label == "POST /api/v1/operations" and isinstance(case.body, dict):
                # Realistic data, as a client system sends: a purchase on a contract that
                # exists, of a price, in its currency (the rules the schema cannot say).
                case.body = {
                    **case.body,
                    "contract_id": str(contract.pk),
                    "type": "purchase",
                    "currency": "EUR",
                    "orders": [{"reference": "O", "items": [PRICED_ITEM]}],
                }
                case.body.pop("refund_of", None)
                case.body.pop("subscriber_ref", None)

        def get_call_kwargs(self, case):
            return {"headers": headers}

        def after_call(self, response, case):
            walked.append((case.operation.label, response.status_code))

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            # As the fuzz tests: a schema-valid request may break a rule the schema cannot say.
            case.validate_response(response, headers=headers, excluded_checks=[positive_data_acceptance])

    Walk.run(
        settings=settings(
            max_examples=30,
            stateful_step_count=4,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
        )
    )

    reads = {label for label, status in walked if label.startswith("GET") and status == 200}
    assert "GET /api/v1/operations/{id}" in reads, walked[:40]
    assert all(status < 500 for _, status in walked)
