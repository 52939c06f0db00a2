from enum import StrEnum


class ReasonCode(StrEnum):
    """Why an operation was rejected (SPEC.md "Reason codes"): answered as the `code`
    of a 422 problem and stored on the rejected operation."""

    CONTRACT_UNKNOWN = "contract_unknown"
    CONTRACT_NOT_ACTIVE = "contract_not_active"
    CONTRACT_EXPIRED = "contract_expired"
    MANDATE_INVALID = "mandate_invalid"
    CREDIT_LIMIT_EXCEEDED = "credit_limit_exceeded"
    CURRENCY_MISMATCH = "currency_mismatch"
    SUBSCRIBER_UNKNOWN = "subscriber_unknown"
    SUBSCRIBER_LIMIT_EXCEEDED = "subscriber_limit_exceeded"
    REFUND_EXCEEDS_PURCHASE = "refund_exceeds_purchase"
    PURCHASE_UNKNOWN = "purchase_unknown"


class BillingErrorCode(StrEnum):
    """Problem codes of the billing API that are not business rejections."""

    OPERATION_UNKNOWN = "operation_unknown"
    CONTRACT_UNKNOWN = "contract_unknown"
    DUPLICATE_EXTERNAL_REF = "duplicate_external_ref"
