"""`manage.py demo` tells the whole story on the local defaults (run quietly here)."""

import io

from django.core.management import call_command

from billing.models import ContractAccount, Operation
from contracts.models import Contract
from invoicing.models import Invoice
from payments.models import Payment


def test_the_demo_tells_the_whole_story(transactional_db):
    out = io.StringIO()
    call_command("demo", stdout=out)
    text = out.getvalue()
    for step in (
        "REJECTED (credit_limit_exceeded)",
        "REJECTED (contract_not_active)",
        "succeeded; invoice paid",
        "failed for good",
        "Factur-X",
    ):
        assert step in text, step
    assert set(Invoice.objects.values_list("status", flat=True)) == {"paid", "failed"}
    assert sorted(Payment.objects.values_list("status", flat=True)) == ["failed", "succeeded"]
    assert Contract.objects.filter(status="suspended").count() == 1
    assert Operation.objects.filter(status="rejected").count() == 3
    paying = ContractAccount.objects.get(status="active")
    assert paying.outstanding == 55_000  # the seminar bought after the credit was freed


def test_the_demo_runs_quietly(transactional_db):
    out = io.StringIO()
    call_command("demo", verbosity=0, stdout=out)
    assert out.getvalue() == ""
    assert Payment.objects.count() == 2
