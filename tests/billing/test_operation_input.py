"""The purchase body's short way through validation (`_plainly_valid_operation`) gives
exactly what the serializer gives, or steps aside: it never accepts what the serializer
refuses, never reads a body differently."""

import copy
import uuid

from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from billing.api.serializers import _operation_input, _plainly_valid_operation, validated_operation

text_chars = st.characters(codec="utf-8", categories=("L", "N", "P", "S"))


def text(max_size: int, min_size: int = 1):
    return st.text(text_chars, min_size=min_size, max_size=max_size)


valid_items = st.fixed_dictionaries(
    {
        "label": text(200),
        "quantity": st.integers(1, 10_000),
        "unit_amount": st.integers(0, 10**10),
        "vat_rate": st.sampled_from(["20", "5.5", "10.00", "0", "2.1", "100", "100.00", "19.6"]),
    }
)
valid_orders = st.fixed_dictionaries({"reference": text(100), "items": st.lists(valid_items, min_size=1, max_size=3)})
valid_bodies = st.fixed_dictionaries(
    {
        "contract_id": st.one_of(st.uuids().map(str), st.uuids().map(lambda u: str(u).upper())),
        "type": st.just("purchase"),
        "external_ref": text(100),
        "currency": st.sampled_from(["EUR", "GBP", "CHF"]),
        "orders": st.lists(valid_orders, min_size=1, max_size=3),
    },
    optional={"subscriber_ref": text(100), "purchase_order": text(100, 0), "cost_centre": text(100, 0)},
)


def _order(body) -> dict:
    """The first order, or a throwaway dict when an earlier mutation left none."""
    orders = body["orders"]
    return orders[0] if isinstance(orders, list) and orders and isinstance(orders[0], dict) else {}


def _item(body) -> dict:
    """The first item of the first order, or a throwaway dict."""
    items = _order(body).get("items")
    return items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}


# Small ways to spoil a valid body: each is something the serializer refuses, reads
# differently (trims, converts) or decides on its own (refunds).
MUTATIONS = {
    "unknown field": lambda b: b.update(unknown=True),
    "refund": lambda b: b.update(type="refund", refund_of=str(uuid.uuid4())),
    "purchase naming a purchase": lambda b: b.update(refund_of=str(uuid.uuid4())),
    "hex uuid": lambda b: b.update(contract_id=str(b["contract_id"]).replace("-", "")),
    "bad uuid": lambda b: b.update(contract_id="not-a-uuid"),
    "number for text": lambda b: b.update(external_ref=12),
    "padded text": lambda b: b.update(external_ref=f" {b['external_ref']} "),
    "empty text": lambda b: b.update(external_ref=""),
    "long text": lambda b: b.update(external_ref="x" * 101),
    "inner space": lambda b: b.update(external_ref=f"BKG {b['external_ref']}"),
    "no-break space": lambda b: b.update(external_ref=f"BKG\u00a0{b['external_ref']}"),
    "format character": lambda b: b.update(external_ref=f"BKG\u200b{b['external_ref']}"),
    "lone surrogate": lambda b: b.update(external_ref=f"BKG\ud800{b['external_ref']}"),
    "line feed": lambda b: _item(b).update(label="Paris\nLyon"),
    "blank subscriber": lambda b: b.update(subscriber_ref=""),
    "null field": lambda b: b.update(cost_centre=None),
    "lower currency": lambda b: b.update(currency="eur"),
    "no orders": lambda b: b.update(orders=[]),
    "orders not a list": lambda b: b.update(orders={"reference": "x"}),
    "too many orders": lambda b: isinstance(b["orders"], list) and b.update(orders=b["orders"] * 51),
    "no items": lambda b: _order(b).update(items=[]),
    "order field": lambda b: _order(b).update(note="x"),
    "zero quantity": lambda b: _item(b).update(quantity=0),
    "huge quantity": lambda b: _item(b).update(quantity=10_001),
    "bool quantity": lambda b: _item(b).update(quantity=True),
    "float amount": lambda b: _item(b).update(unit_amount=12.5),
    "negative amount": lambda b: _item(b).update(unit_amount=-1),
    "huge amount": lambda b: _item(b).update(unit_amount=10**10 + 1),
    "number rate": lambda b: _item(b).update(vat_rate=20),
    "bad rate": lambda b: _item(b).update(vat_rate="101"),
    "long label": lambda b: _item(b).update(label="x" * 201),
    "item field": lambda b: _item(b).update(extra=1),
    "all free": lambda b: isinstance(b["orders"], list) and [_free(order) for order in b["orders"]],
}


def _free(order: dict) -> None:
    for item in order.get("items") or []:
        item["unit_amount"] = 0


@st.composite
def bodies(draw):
    body = copy.deepcopy(draw(valid_bodies))
    for name in draw(st.lists(st.sampled_from(sorted(MUTATIONS)), max_size=2)):
        MUTATIONS[name](body)
    return body


PLAIN = {
    "contract_id": "3f2b8c1e-6a54-4f0e-9a1d-2c7e5b9d8a10",
    "type": "purchase",
    "external_ref": "BKG-1",
    "currency": "EUR",
    "purchase_order": "",
    "orders": [
        {
            "reference": "ORD-1",
            "items": [{"label": "Paris → Lyon", "quantity": 2, "unit_amount": 4500, "vat_rate": "10"}],
        }
    ],
}


@hypothesis_settings(max_examples=600, deadline=None)
@given(bodies())
@example(PLAIN)
def test_the_short_way_gives_what_the_serializer_gives_or_steps_aside(body):
    plain = _plainly_valid_operation(body)
    try:
        slow = _operation_input.run_validation(body)
    except ValidationError:
        assert plain is None  # refused by the serializer: never taken the short way
        return
    assert plain is None or plain == slow  # taken the short way: read exactly the same


def test_a_plain_purchase_takes_the_short_way_and_a_bad_one_gets_the_serializers_errors():
    assert _plainly_valid_operation(PLAIN) is not None
    assert validated_operation(PLAIN)["contract_id"] == uuid.UUID(PLAIN["contract_id"])
    bad = {**PLAIN, "orders": [{"reference": "ORD-1", "items": [{**PLAIN["orders"][0]["items"][0], "quantity": 0}]}]}
    assert _plainly_valid_operation(bad) is None
    try:
        validated_operation(bad)
    except ValidationError as refused:
        assert "orders" in refused.detail
    else:
        raise AssertionError("a quantity of 0 was accepted")
