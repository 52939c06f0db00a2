"""Business time: dates are Europe/Paris dates, datetimes are timezone-aware."""

import datetime as dt
from zoneinfo import ZoneInfo

from django.utils import timezone

PARIS = ZoneInfo("Europe/Paris")


def now() -> dt.datetime:
    return timezone.now()


def business_today() -> dt.date:
    """Today's date in Paris, whatever the server's zone."""
    return timezone.now().astimezone(PARIS).date()


def business_date(moment: dt.datetime) -> dt.date:
    return moment.astimezone(PARIS).date()
