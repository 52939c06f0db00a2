"""`check --deploy --database default` refuses a staff account with a known password."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import SystemCheckError

pytestmark = pytest.mark.django_db


def test_a_superuser_with_the_local_runs_password_fails_the_deployment_check():
    admin = get_user_model().objects.create_superuser("admin", "admin@boissipay.example", "admin")
    with pytest.raises(SystemCheckError, match=r"boissipay\.E001.*'admin' has a well-known password"):
        call_command("check", deploy=True, databases=["default"])

    admin.set_password("a passphrase only its owner knows 7f3a")
    admin.save()
    call_command("check", deploy=True, databases=["default"], fail_level="ERROR")


def test_an_account_whose_password_is_its_name_fails_too_and_an_inactive_one_is_let_be():
    get_user_model().objects.create_user("compta", password="compta", is_staff=True)
    get_user_model().objects.create_user("gone", password="admin", is_staff=True, is_active=False)
    with pytest.raises(SystemCheckError) as raised:
        call_command("check", deploy=True, databases=["default"])
    assert "'compta'" in str(raised.value) and "'gone'" not in str(raised.value)
