"""Payments' figures on the staff's dashboard (boissipay.dashboard): overdue and failed
debits, what was collected month by month, and why debits failed."""

from django.db.models import Count, F, Sum
from django.db.models.functions import TruncMonth
from django.urls import reverse

from boissipay.clock import business_today
from boissipay.dashboard import Figure, Series, contributes, months_back
from boissipay.money import format_money
from payments import selectors
from payments.models import ManualPayment, Payment


@contributes
def payments_figures() -> list[Figure | Series]:
    today = business_today()
    payments = reverse("admin:payments_payment_changelist")
    overdue = selectors.overdue(Payment.objects.filter(currency="EUR"), today).aggregate(
        count=Count("pk"), total=Sum(F("amount") - F("allocated") - F("credited"))
    )
    overdue_total = overdue["total"] or 0
    failed = Payment.objects.filter(status="failed").count()
    months = months_back(today, 12)
    collected: dict[str, int] = {f"{month:%Y-%m}": 0 for month in months}
    for row in (
        Payment.objects.filter(status="succeeded", currency="EUR", settled_at__date__gte=months[0])
        .annotate(month=TruncMonth("settled_at"))
        .values("month")
        .annotate(total=Sum(F("amount") - F("allocated") - F("credited")))
    ):
        collected[f"{row['month']:%Y-%m}"] = collected.get(f"{row['month']:%Y-%m}", 0) + row["total"]
    for row in (
        ManualPayment.objects.filter(currency="EUR", received_on__gte=months[0])
        .annotate(month=TruncMonth("received_on"))
        .values("month")
        .annotate(total=Sum("amount"))
    ):
        collected[f"{row['month']:%Y-%m}"] = collected.get(f"{row['month']:%Y-%m}", 0) + row["total"]
    reasons = (
        Payment.objects.filter(
            status__in=["failed", "returned", "refunded", "pending"], updated_at__date__gte=months[0]
        )
        .exclude(reason_code="")
        .values("reason_code")
        .annotate(count=Count("pk"))
    )
    return [
        Figure(
            "Recouvrement",
            "Prélèvements en retard (EUR)",
            f"{overdue['count']} — {format_money(overdue_total, 'EUR')}",
            f"{payments}?overdue=yes",
            "warning" if overdue_total else "",
            21,
        ),
        Figure(
            "Recouvrement",
            "Prélèvements en échec",
            str(failed),
            f"{payments}?status__exact=failed",
            "danger" if failed else "",
            22,
        ),
        Series("Facturé et encaissé par mois (EUR)", "Encaissé", collected, color="#79aec8"),
        Series(
            "Échecs de prélèvement par motif (12 mois)",
            "Échecs",
            {row["reason_code"]: row["count"] for row in reasons},
            color="#ba2121",
            money=False,
        ),
    ]
