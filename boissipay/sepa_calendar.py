"""The SEPA (TARGET2) business-day calendar, shared by invoicing's pre-notification and
payments' collection so that the invoice, its e-mail and the direct debit announce and
use the same date."""

import datetime as dt

from dateutil.easter import easter


def target_holidays(year: int) -> set[dt.date]:
    """The days the euro payment system (TARGET2) is closed, besides weekends."""
    easter_sunday = easter(year)
    return {
        dt.date(year, 1, 1),
        easter_sunday - dt.timedelta(days=2),  # Good Friday
        easter_sunday + dt.timedelta(days=1),  # Easter Monday
        dt.date(year, 5, 1),
        dt.date(year, 12, 25),
        dt.date(year, 12, 26),
    }


def is_target_business_day(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in target_holidays(day.year)


def next_target_business_day(day: dt.date) -> dt.date:
    """`day` itself when the euro payment system is open that day, else the first day after it that it is."""
    while not is_target_business_day(day):
        day += dt.timedelta(days=1)
    return day


def debit_date(due_date: dt.date) -> dt.date:
    """The day a direct debit due on `due_date` is taken from the account: the due date,
    or the next TARGET business day when the due date is a weekend or a TARGET holiday."""
    return next_target_business_day(due_date)


def earliest_collection_date(wanted: dt.date, today: dt.date) -> dt.date:
    """A SEPA Core file must reach the bank at least one TARGET business day before the
    collection date: `wanted`, or the first business day after the next one, if later."""
    earliest = next_target_business_day(today + dt.timedelta(days=1))
    return next_target_business_day(max(wanted, earliest))


def submission_horizon(today: dt.date, lead_business_days: int) -> dt.date:
    """The last due date a collection made `today` may take: a gateway that needs its
    debits `lead_business_days` TARGET business days ahead (a SEPA Core file: one) takes
    today those due up to that many business days from now, so that each is debited on
    the day announced to the customer, not a day later."""
    day = today
    for _ in range(lead_business_days):
        day = next_target_business_day(day + dt.timedelta(days=1))
    return day
