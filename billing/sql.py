"""The SQL of deciding an operation, in one place: plain statements, prepared, through
Django's connection (boissipay.db), because on this path (the booking counter waits on
it) building them with the ORM cost more than running them. `billing.services` says
what they mean."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass

from billing.models import Balance, ContractAccount, Operation
from boissipay import db

_ACCOUNT_COLUMNS = (
    "contract_id",
    "reference",
    "customer_id",
    "currency",
    "credit_limit",
    "starts_on",
    "ends_on",
    "status",
    "mandate_status",
    "mandate_expires_on",
    "subscriber_refs",
    "subscriber_caps",
    "unbilled",
    "invoiced_unpaid",
)

LOCK_ACCOUNT = f"""
SELECT {", ".join(_ACCOUNT_COLUMNS)}
FROM {ContractAccount._meta.db_table}
WHERE contract_id = %s
FOR UPDATE
"""

_OPERATION_COLUMNS = tuple(field.column for field in Operation._meta.concrete_fields)
_JSON_COLUMNS = {"vat_breakdown", "orders"}

INSERT_OPERATION = f"""
INSERT INTO {Operation._meta.db_table} ({", ".join(_OPERATION_COLUMNS)})
VALUES ({", ".join("%s::jsonb" if column in _JSON_COLUMNS else "%s" for column in _OPERATION_COLUMNS)})
"""

ADD_TO_UNBILLED = f"""
UPDATE {ContractAccount._meta.db_table} SET unbilled = unbilled + %s, updated_at = now() WHERE contract_id = %s
"""

ALREADY_ACCEPTED = f"""
SELECT EXISTS (
    SELECT 1 FROM {Operation._meta.db_table}
    WHERE contract_id = %s AND type = %s AND external_ref = %s AND status = 'accepted'
)
"""


# What a subscriber's accepted purchases of the Paris month come to, less what was
# refunded of them: what their monthly cap counts (index operation_subscriber_month).
SUBSCRIBER_SPENT = f"""
SELECT coalesce(sum(amount - refunded_amount), 0)
FROM {Operation._meta.db_table}
WHERE contract_id = %s AND subscriber_ref = %s AND type = 'purchase' AND status = 'accepted'
  AND decided_at >= %s AND decided_at < %s
"""


@dataclass
class LockedAccount(Balance):
    """A contract's account row, locked until the deciding transaction ends: what the
    acceptance rules read (the same attributes as ContractAccount)."""

    contract_id: uuid.UUID
    reference: str
    customer_id: uuid.UUID
    currency: str
    credit_limit: int
    starts_on: dt.date
    ends_on: dt.date | None
    status: str
    mandate_status: str
    mandate_expires_on: dt.date | None
    subscriber_refs: list
    subscriber_caps: dict
    unbilled: int
    invoiced_unpaid: int


def lock_account(contract_id) -> LockedAccount | None:
    row = db.fetch_one(LOCK_ACCOUNT, [contract_id])
    if row is None:
        return None
    account = LockedAccount(*row)
    if isinstance(account.subscriber_refs, str):
        account.subscriber_refs = json.loads(account.subscriber_refs)
    if isinstance(account.subscriber_caps, str):
        account.subscriber_caps = json.loads(account.subscriber_caps)
    return account


def insert_operation(operation: Operation) -> None:
    """INSERT the operation's row; an accepted booking already on the contract raises
    IntegrityError (the partial unique index on external_ref)."""
    values = [
        json.dumps(getattr(operation, field.attname))
        if field.column in _JSON_COLUMNS
        else getattr(operation, field.attname)
        for field in Operation._meta.concrete_fields
    ]
    db.execute(INSERT_OPERATION, values)


def add_to_unbilled(contract_id, amount: int) -> None:
    db.execute(ADD_TO_UNBILLED, [amount, contract_id])


def already_accepted(contract_id, type_: str, external_ref: str) -> bool:
    return db.fetch_one(ALREADY_ACCEPTED, [contract_id, type_, external_ref])[0]


def subscriber_spent(contract_id, subscriber_ref: str, today: dt.date) -> int:
    """The subscriber's spending in the Paris month of `today`, refunds deducted."""
    from boissipay.clock import PARIS

    first = today.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    start = dt.datetime(first.year, first.month, 1, tzinfo=PARIS)
    end = dt.datetime(following.year, following.month, 1, tzinfo=PARIS)
    return int(db.fetch_one(SUBSCRIBER_SPENT, [contract_id, subscriber_ref, start, end])[0])
