"""The staff's dashboard on the admin's index: the figures finance watches, each linked to
the filtered list behind it, and charts of the months.

The kernel knows no context: each context contributes what it knows through
`@contributes` (in its own `dashboard.py`, imported by its AppConfig): figures, and
series of monthly charts (a chart may take series from several contexts, such as
invoiced and collected). A contribution that fails is shown as unavailable: the index
never fails for it."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Figure:
    section: str  # "Encours", "Recouvrement", "Facturation", "Plateforme"
    label: str
    value: str
    url: str = ""
    tone: str = ""  # "", "warning" or "danger"
    order: int = 0


@dataclass(frozen=True)
class Series:
    chart: str  # the chart it belongs to, e.g. "Facturé et encaissé par mois (EUR)"
    name: str
    points: dict[str, int]  # label (e.g. "2026-10") -> value
    color: str = "#417690"
    money: bool = True  # values in minor units of EUR


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass
class Chart:
    title: str
    series: list[Series]
    labels: list[str]
    bars: list[Bar] = field(default_factory=list)
    width: int = 640
    height: int = 200
    ticks: list[tuple[float, str]] = field(default_factory=list)  # (x, label)


_contributors: list[Callable[[], list[Figure | Series]]] = []


def contributes(func: Callable[[], list[Figure | Series]]) -> Callable[[], list[Figure | Series]]:
    """Register a context's contribution to the dashboard."""
    if func not in _contributors:
        _contributors.append(func)
    return func


def months_back(today: dt.date, count: int) -> list[dt.date]:
    """The first days of the last `count` months, oldest first, this month included."""
    months, year, month = [], today.year, today.month
    for _ in range(count):
        months.append(dt.date(year, month, 1))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return months[::-1]


def _draw(title: str, series: list[Series]) -> Chart:
    labels = sorted({label for s in series for label in s.points})
    chart = Chart(title=title, series=series, labels=labels)
    top = max((value for s in series for value in s.points.values()), default=0) or 1
    group = (chart.width - 40) / max(len(labels), 1)
    bar_width = max(group * 0.8 / max(len(series), 1), 2)
    for i, label in enumerate(labels):
        x0 = 40 + i * group + group * 0.1
        chart.ticks.append((x0 + group * 0.4, label))
        for j, s in enumerate(series):
            value = s.points.get(label, 0)
            height = (chart.height - 30) * value / top
            shown = _money(value) if s.money else str(value)
            chart.bars.append(
                Bar(
                    x=round(x0 + j * bar_width, 1),
                    y=round(chart.height - 20 - height, 1),
                    width=round(bar_width - 1, 1),
                    height=round(height, 1),
                    color=s.color,
                    title=f"{s.name} {label} : {shown}",
                )
            )
    return chart


def _money(minor: int) -> str:
    from boissipay.money import format_money

    return format_money(minor, "EUR")


def dashboard() -> dict:
    """What the index shows: {"sections": [(name, [Figure])], "charts": [Chart], "unavailable": [str]}."""
    figures: list[Figure] = []
    series: dict[str, list[Series]] = {}
    unavailable = []
    for contributor in _contributors:
        try:
            for item in contributor():
                if isinstance(item, Figure):
                    figures.append(item)
                else:
                    series.setdefault(item.chart, []).append(item)
        except Exception:  # a broken figure must not take the back office down
            logger.exception("dashboard contribution %s failed", contributor.__qualname__)
            unavailable.append(contributor.__module__.split(".")[0])
    sections: dict[str, list[Figure]] = {}
    for figure in sorted(figures, key=lambda f: f.order):
        sections.setdefault(figure.section, []).append(figure)
    return {
        "sections": list(sections.items()),
        "charts": [_draw(title, parts) for title, parts in series.items()],
        "unavailable": unavailable,
    }


@contributes
def platform_figures() -> list[Figure | Series]:
    """The event backbone: what waits to be published, and dead letters nobody closed."""
    from django.db.models import Min
    from django.urls import reverse
    from django.utils import timezone

    from boissipay.models import DeadLetter, OutboxEvent

    pending = OutboxEvent.objects.filter(published_at__isnull=True, dead_lettered_at__isnull=True)
    backlog = pending.aggregate(oldest=Min("occurred_at"))
    waiting = pending.count()
    age = ""
    if backlog["oldest"]:
        minutes = int((timezone.now() - backlog["oldest"]).total_seconds() // 60)
        age = f" (le plus ancien : {minutes} min)"
    open_letters = DeadLetter.objects.filter(replayed_at__isnull=True, resolved_at__isnull=True).count()
    outbox = reverse("admin:boissipay_outboxevent_changelist")
    letters = reverse("admin:boissipay_deadletter_changelist")
    return [
        Figure(
            "Plateforme",
            "Événements à publier",
            f"{waiting}{age}",
            f"{outbox}?delivery=pending",
            "warning" if waiting > 1000 else "",
            90,
        ),
        Figure(
            "Plateforme",
            "Lettres mortes ouvertes",
            str(open_letters),
            f"{letters}?state=open",
            "danger" if open_letters else "",
            91,
        ),
    ]
