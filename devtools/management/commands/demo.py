"""`manage.py demo`: Boissipay's whole story, end to end, with readable output.

A customer signs a contract; purchases are accepted, one is rejected over the credit
limit, one refunded; a suspension blocks a purchase; the month is invoiced (PDF with its
Factur-X e-invoice, e-mailed); the invoice is collected through the provider emulator,
which frees the credit. A second customer's bank refuses every debit: after the retries
the contract is suspended and its purchases are blocked.

It runs on whatever database the settings name (the embedded one by default), with the
events delivered in-process, our webhook served on a free local port and the provider
emulator started beside it. Each run creates its own customers, so it can run again."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid
from decimal import Decimal
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.management.base import BaseCommand
from django.db import connection, connections
from django.test.utils import override_settings

from billing import services as billing
from billing.models import ContractAccount
from boissipay.clock import business_today
from boissipay.dispatcher import EventDispatcher
from boissipay.models import OutboxEvent
from boissipay.money import format_money
from boissipay.sepa_calendar import debit_date
from contracts import services as contracts
from contracts.models import Contract
from devtools.payments_emulator import GatewayEmulator
from invoicing import services as invoicing
from invoicing.models import Invoice
from payments import services as payments
from payments.models import Payment

GOOD_IBAN = "FR1420041010050500013M02606"
BROKE_IBAN = "DE89370400440532013000"  # the emulator is told this account has no money


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _ThreadingWSGIServer(WSGIServer):
    daemon_threads = True


def _closing(app):
    """The WSGI app, closing the serving thread's database connections after each request
    (the server's threads die with them open otherwise)."""

    def serve(environ, start_response):
        try:
            return app(environ, start_response)
        finally:
            connections.close_all()

    return serve


def _siren() -> str:
    """A random valid SIREN (Luhn)."""
    while True:
        body = f"{random.randrange(10**7, 10**8):08d}"
        for check in range(10):
            candidate = body + str(check)
            total = sum(
                (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 else d
                for i, d in enumerate(int(c) for c in reversed(candidate))
            )
            if total % 10 == 0:
                return candidate


def _vat(siren: str) -> str:
    return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"


class Command(BaseCommand):
    help = "Tell Boissipay's whole story end to end (contract, purchases, invoice, collection, suspension)."

    def handle(self, *args, **options):
        self.quiet = options["verbosity"] == 0
        self.run_id = uuid.uuid4().hex[:6].upper()
        web = make_server(
            "127.0.0.1", 0, _closing(WSGIHandler()), server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        threading.Thread(target=web.serve_forever, daemon=True).start()
        webhook = f"http://127.0.0.1:{web.server_port}/api/v1/payments/webhook"
        emulator = GatewayEmulator(
            port=0,
            secret=settings.PAYMENTS_WEBHOOK_SECRET,
            outcomes={"iban": {BROKE_IBAN: "insufficient_funds"}, "cents": {}},
            delay_seconds=0.2,
            log=lambda line: None,
        ).start()
        self.emulator = emulator
        feeds = dict.fromkeys(settings.EVENT_FEED, "inprocess")
        # The event dispatcher, as `make run` runs it: it feeds the other contexts after
        # each commit; the story waits for it (settle) before it reads their tables.
        stop_dispatching = threading.Event()
        dispatching = threading.Thread(target=self.dispatch, args=(stop_dispatching,), daemon=True)
        try:
            with override_settings(
                EVENT_FEED=feeds,
                PAYMENTS_GATEWAY="emulator",
                PAYMENTS_EMULATOR_URL=emulator.url,
                PAYMENTS_WEBHOOK_URL=webhook,
                PAYMENTS_RETRY_DAYS=[3, 7],
                CELERY_TASK_ALWAYS_EAGER=True,
                EINVOICING_GATEWAY="email",  # this story e-mails its invoice; `make run` deposits them
            ):
                from config.celery import app

                eager = app.conf.task_always_eager
                app.conf.task_always_eager = True
                dispatching.start()
                try:
                    self.story()
                finally:
                    app.conf.task_always_eager = eager
                    stop_dispatching.set()
                    dispatching.join(10)
        finally:
            emulator.stop()
            web.shutdown()
            web.server_close()

    @staticmethod
    def dispatch(stop: threading.Event) -> None:
        try:
            EventDispatcher().run(stop=stop)
        finally:
            connection.close()

    def settle(self) -> None:
        """Wait until the dispatcher has fed every event recorded so far."""
        self.wait(
            lambda: not OutboxEvent.objects.filter(dispatched_at__isnull=True).exists(), "the events to be dispatched"
        )

    # --- output -------------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        if not self.quiet:
            self.stdout.write(text)

    def chapter(self, title: str) -> None:
        self.say()
        self.say(self.style.MIGRATE_HEADING(title))

    def money(self, amount: int) -> str:
        return format_money(amount, "EUR")

    def balance(self, contract) -> str:
        account = ContractAccount.objects.get(pk=contract.pk)
        return (
            f"outstanding {self.money(account.outstanding)} of {self.money(account.credit_limit)}, "
            f"available {self.money(account.available)}"
        )

    def buy(self, contract, label: str, amount: int, vat_rate: str = "10") -> billing.Operation:
        unit = round(Decimal(amount) / (1 + Decimal(vat_rate) / 100))
        request = billing.OperationRequest(
            contract_id=contract.pk,
            type="purchase",
            external_ref=f"BKG-{self.run_id}-{uuid.uuid4().hex[:6].upper()}",
            currency="EUR",
            purchase_order=f"PO-{self.run_id}",
            cost_centre="CC-TRAVEL",
            orders=(
                billing.Order(
                    reference=f"ORD-{uuid.uuid4().hex[:6].upper()}",
                    items=(billing.Item(label=label, quantity=1, unit_amount=int(unit), vat_rate=Decimal(vat_rate)),),
                ),
            ),
        )
        operation = billing.submit_operation(request=request)
        self.settle()
        if operation.status == "accepted":
            self.say(f"  ✔ {label}: {self.money(operation.amount)} accepted — {self.balance(contract)}")
        else:
            self.say(f"  ✘ {label}: {self.money(operation.amount)} REJECTED ({operation.reason_code})")
        return operation

    def wait(self, predicate, what: str, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            time.sleep(0.1)
        raise RuntimeError(f"the demo waited {timeout:.0f} s for {what}")

    # --- the story ----------------------------------------------------------------------------

    def sign_up(self, name: str, iban: str, credit_limit: int):
        siren = _siren()
        customer = contracts.register_customer(
            legal_name=name,
            siren=siren,
            vat_number=_vat(siren),
            billing_email=f"compta+{self.run_id.lower()}@{name.split()[-1].lower()}.example",
            billing_address="12 avenue des Champs-Élysées\n75008 Paris",
        )
        today = business_today()
        contract = contracts.subscribe_contract(
            customer_id=customer.pk,
            reference=f"CTR-{self.run_id}-{name.split()[-1].upper()[:6]}",
            currency="EUR",
            credit_limit=credit_limit,
            starts_on=today.replace(day=1),
            ends_on=today + dt.timedelta(days=365),  # (not replace(year=…): no 29 February next year)
            payment_terms_days=30,
            mandate=contracts.MandateDetails(
                reference=f"UMR-{self.run_id}-{uuid.uuid4().hex[:8].upper()}", iban=iban, signed_on=today
            ),
        )
        self.settle()
        self.say(
            f"  {customer.legal_name} (SIREN {customer.siren}) signs {contract.reference}: "
            f"credit limit {self.money(credit_limit)}, 30 days, SEPA mandate {contract.mandates.get().reference}"
        )
        return contract

    def invoice_month(self, contract) -> Invoice:
        # The month has not ended: the demo asks for an early invoice, as staff would for a
        # contract that stops mid-month, instead of waiting for the run of the 1st.
        run = invoicing.invoice_early(
            contract_reference=contract.reference,
            reason="demo: the month's invoice without waiting for its end",
            trigger="command",
            started_by="demo",
        )
        self.settle()
        invoice = Invoice.objects.get(billing_run=run)
        invoicing.invoice_pdf(invoice_id=invoice.pk)
        invoice.refresh_from_db()
        self.say(
            f"  early invoice of {run.period:%Y-%m}: invoice {invoice.number}, "
            f"{self.money(invoice.total_incl_tax)} incl. VAT, due {invoice.due_date:%d/%m/%Y}, "
            f"{invoice.status} to {invoice.buyer['billing_email']}"
        )
        self.say(f"  PDF with its Factur-X e-invoice: {invoice.pdf.path}")
        return invoice

    def collect(self, contract, day: dt.date, timeout: float = 60.0) -> Payment:
        """Submit the contract's due debit and wait for the provider's answer. A debit the
        emulator did not take (a slow answer on a loaded machine) stays pending with the
        same attempt: it is submitted again, as the next scheduled run would."""
        attempts = Payment.objects.get(contract_id=contract.pk).attempts
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            payment = Payment.objects.get(contract_id=contract.pk)
            if payment.attempts == attempts + 1 and payment.status != "submitted":
                return payment
            if payment.attempts == attempts and payment.status == "pending":
                payments.submit_due_payments(today=day)
            time.sleep(0.1)
        raise RuntimeError(f"the demo waited {timeout:.0f} s for the provider's answer: {self.story_of(payment)}")

    def story_of(self, payment: Payment) -> str:
        """What a stuck payment went through, for the error that says the demo gave up."""
        lines = [f"payment {payment.pk} {payment.status}, attempt {payment.attempts}, due {payment.due_date}"]
        lines += [f"{entry.created_at:%H:%M:%S} {entry}" for entry in reversed(payment.log.all()[:8])]
        if payment.provider_reference:
            lines.append(f"emulator: {self.emulator.charge(payment.provider_reference)}")
        return "\n  ".join(lines)

    def story(self) -> None:
        self.say(self.style.SUCCESS(f"Boissipay demo {self.run_id}"))

        self.chapter("1. A corporate customer signs a deferred-payment contract")
        contract = self.sign_up("CSE Aérospatiale Toulouse", GOOD_IBAN, credit_limit=150_000)

        self.chapter("2. Its travel desk buys trips on account")
        paris_nice = self.buy(contract, "Paris → Nice, 4 TGV tickets", 48_000)
        self.buy(contract, "Hôtel Negresco, 2 nights", 62_000)
        self.buy(contract, "Seminar in Lyon, 12 people", 55_000)  # over the limit

        self.chapter("3. A trip is cancelled: refund")
        refund = billing.submit_operation(
            request=billing.OperationRequest(
                contract_id=contract.pk,
                type="refund",
                refund_of=paris_nice.pk,
                external_ref=f"RFD-{self.run_id}",
                currency="EUR",
                orders=(
                    billing.Order(
                        reference="ORD-RFD",
                        items=(
                            billing.Item(
                                label="1 ticket refunded", quantity=1, unit_amount=10_910, vat_rate=Decimal(10)
                            ),
                        ),
                    ),
                ),
            )
        )
        self.settle()
        self.say(f"  ↩ refund of {self.money(refund.amount)} {refund.status} — {self.balance(contract)}")

        self.chapter("4. Credit control suspends the contract, then lifts it")
        contracts.suspend_contract(contract_id=contract.pk, reason="Waiting for the signed amendment")
        self.settle()
        self.say("  contract suspended")
        self.buy(contract, "Bordeaux day trip", 9_000)
        contracts.reactivate_contract(contract_id=contract.pk)
        self.settle()
        self.say("  contract reactivated")
        self.buy(contract, "Bordeaux day trip", 9_000)

        self.chapter("5. Month end: the billing run invoices the month")
        invoice = self.invoice_month(contract)

        self.chapter("6. On the due date the invoice is collected by direct debit")
        payment = self.collect(contract, debit_date(invoice.due_date))  # a weekend or holiday moves it
        self.wait(lambda: Invoice.objects.filter(pk=invoice.pk, status="paid").exists(), "the invoice paid")
        self.wait(
            lambda: ContractAccount.objects.filter(pk=contract.pk, invoiced_unpaid=0).exists(), "the credit freed"
        )
        self.say(f"  debit {payment.sequence_type} {self.money(payment.amount)}: {payment.status}; invoice paid")
        self.say(f"  credit freed — {self.balance(contract)}")
        self.buy(contract, "Seminar in Lyon, 12 people", 55_000)

        self.chapter("7. Another customer's bank refuses every debit")
        broke = self.sign_up("CSE Fauché Industries", BROKE_IBAN, credit_limit=50_000)
        self.buy(broke, "Marseille conference", 30_000)
        broke_invoice = self.invoice_month(broke)
        day = debit_date(broke_invoice.due_date)
        while True:
            payment = self.collect(broke, day)
            if payment.status == "failed":
                self.say(f"  attempt {payment.attempts} on {day:%d/%m/%Y}: {payment.failure_reason} — failed for good")
                break
            self.say(
                f"  attempt {payment.attempts} on {day:%d/%m/%Y}: {payment.failure_reason} — "
                f"retry on {payment.due_date:%d/%m/%Y}"
            )
            day = payment.due_date
        self.wait(lambda: Contract.objects.filter(pk=broke.pk, status="suspended").exists(), "the suspension")
        self.wait(lambda: ContractAccount.objects.filter(pk=broke.pk, status="suspended").exists(), "billing to know")
        self.say(f"  invoice {Invoice.objects.get(pk=broke_invoice.pk).status}; contract {broke.reference} suspended")
        self.buy(broke, "Marseille conference, day 2", 5_000)

        self.say()
        self.say(self.style.SUCCESS("The end. Everything above is in the admin, the API and the event topics."))
