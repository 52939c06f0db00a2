"""The suite's own guarantee: a transactional test empties every table when it ends, yet
the next test finds the database as migrated (staff groups with their permissions, Beat's
schedule), in whatever order the tests run (pytest-xdist spreads them over workers)."""

import pytest
from django.contrib.auth.models import Group
from django_celery_beat.models import PeriodicTask

pytestmark = pytest.mark.django_db(transaction=True)


def as_migrated() -> tuple:
    return (
        sorted(Group.objects.values_list("name", flat=True)),
        Group.objects.get(name="Opérateur finance").permissions.count() > 10,
        PeriodicTask.objects.filter(name__icontains="billing").exists(),
    )


def test_a_transactional_test_finds_the_migrations_rows():
    assert as_migrated() == (["Administrateur", "Contrôle crédit (lecture)", "Opérateur finance"], True, True)
    Group.objects.all().delete()


def test_and_so_does_the_next_one_after_the_flush():
    assert as_migrated() == (["Administrateur", "Contrôle crédit (lecture)", "Opérateur finance"], True, True)
