"""Fixtures of the accounting tests."""

from tests.payments.conftest import bank  # noqa: F401 (the bank's files, for collections)
