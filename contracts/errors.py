from enum import StrEnum


class ContractErrorCode(StrEnum):
    """Stable problem codes of the contracts context."""

    CUSTOMER_ALREADY_EXISTS = "customer_already_exists"
    CUSTOMER_UNKNOWN = "customer_unknown"
    CONTRACT_UNKNOWN = "contract_unknown"
    CONTRACT_REFERENCE_TAKEN = "contract_reference_taken"
    CONTRACT_CANCELLED = "contract_cancelled"
    CONTRACT_ALREADY_SUSPENDED = "contract_already_suspended"
    CONTRACT_NOT_SUSPENDED = "contract_not_suspended"
    MANDATE_REFERENCE_TAKEN = "mandate_reference_taken"
    MANDATE_NOT_ACTIVE = "mandate_not_active"
    SUBSCRIBER_ALREADY_REGISTERED = "subscriber_already_registered"
    SUBSCRIBER_UNKNOWN = "subscriber_unknown"
