"""Invoicing's figures on the staff's dashboard (boissipay.dashboard): DSO, the last and
the next billing runs, and what was invoiced month by month."""

import datetime as dt

from django.db.models import Sum
from django.db.models.functions import TruncMonth
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.timezone import localtime

from boissipay.clock import business_today
from boissipay.dashboard import Figure, Series, contributes, months_back
from invoicing import selectors
from invoicing.models import BillingRun, Invoice

DSO_DAYS = 90


@contributes
def invoicing_figures() -> list[Figure | Series]:
    today = business_today()
    invoices = reverse("admin:invoicing_invoice_changelist")
    receivable = sum(row["total"] for row in selectors.aged_receivables(today) if row["currency"] == "EUR")
    since = today - dt.timedelta(days=DSO_DAYS)
    invoiced = (
        Invoice.objects.filter(currency="EUR", issue_date__gt=since, issue_date__lte=today)
        .exclude(status="cancelled")
        .aggregate(total=Sum("total_incl_tax"))["total"]
        or 0
    )
    dso = f"{round(receivable * DSO_DAYS / invoiced)} jours" if invoiced > 0 else "—"
    figures: list[Figure | Series] = [
        Figure("Recouvrement", f"DSO ({DSO_DAYS} jours, EUR)", dso, f"{invoices}aged-receivables/", "", 20)
    ]
    runs = reverse("admin:invoicing_billingrun_changelist")
    last = BillingRun.objects.filter(early=False, dry_run=False).order_by("-created_at").first()
    if last is None:
        figures.append(Figure("Facturation", "Dernier cycle de facturation", "aucun", runs, "", 30))
    else:
        when = date_format(localtime(last.finished_at or last.created_at), "SHORT_DATETIME_FORMAT")
        figures.append(
            Figure(
                "Facturation",
                "Dernier cycle de facturation",
                f"{last.period:%m/%Y} — {last.get_status_display()} le {when}, {last.invoices_count} factures",
                reverse("admin:invoicing_billingrun_change", args=[last.pk]),
                "danger" if last.status == "failed" else "",
                30,
            )
        )
    figures.append(Figure("Facturation", "Prochain cycle", _next_run(today), runs, "", 31))
    first = months_back(today, 12)[0]
    monthly = (
        Invoice.objects.filter(currency="EUR", issue_date__gte=first)
        .exclude(status="cancelled")
        .annotate(month=TruncMonth("issue_date"))
        .values("month")
        .annotate(total=Sum("total_incl_tax"))
    )
    figures.append(
        Series(
            "Facturé et encaissé par mois (EUR)",
            "Facturé",
            {f"{month:%Y-%m}": 0 for month in months_back(today, 12)}
            | {f"{row['month']:%Y-%m}": row["total"] for row in monthly},
            color="#417690",
        )
    )
    return figures


def _next_run(today: dt.date) -> str:
    """The monthly run's next firing, from Beat's schedule."""
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.filter(name="monthly billing run").select_related("crontab").first()
    if task is None or not task.enabled or task.crontab is None:
        return "non planifié"
    first = dt.date(today.year + today.month // 12, today.month % 12 + 1, 1)
    return f"le {first:%d/%m/%Y} à {int(task.crontab.hour):02d}h{int(task.crontab.minute):02d}"
