"""Billing's figures on the staff's dashboard (boissipay.dashboard): what customers owe,
and the contracts near their limit."""

from django.db.models import F, Sum
from django.urls import reverse

from billing.models import ContractAccount
from boissipay.dashboard import Figure, Series, contributes
from boissipay.money import format_money


@contributes
def outstanding() -> list[Figure | Series]:
    accounts = ContractAccount.objects.alias(owed=F("unbilled") + F("invoiced_unpaid"))
    url = reverse("admin:billing_contractaccount_changelist")
    figures: list[Figure | Series] = [
        Figure(
            "Encours",
            f"Encours total ({row['currency']})",
            format_money(row["total"] or 0, row["currency"]),
            f"{url}?currency={row['currency']}",
            "",
            10,
        )
        for row in accounts.values("currency").annotate(total=Sum("owed")).order_by("currency")
    ]
    near = accounts.filter(credit_limit__gt=0, owed__gte=F("credit_limit") * 0.8).count()
    figures.append(
        Figure(
            "Encours",
            "Contrats à plus de 80 % de leur limite",
            str(near),
            f"{url}?credit=over80",
            "warning" if near else "",
            11,
        )
    )
    return figures
