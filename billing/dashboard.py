"""Billing's figures on the staff's dashboard (boissipay.dashboard): what customers owe,
and the contracts near their limit."""

from django.db.models import F, Sum
from django.urls import reverse

from billing import selectors
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
    near = selectors.near_their_limit(ContractAccount.objects.all()).count()
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
