"""Fixtures of the payments tests."""

import pytest


@pytest.fixture
def bank(settings, tmp_path):
    """Debits go to the bank as a pain.008 file; its answers come back as files
    (tests/payments/bank_files.py makes them). Returns the folder the files go in."""
    settings.PAYMENTS_GATEWAY = "sepa_file"
    settings.PAYMENTS_SEPA_OUTPUT_DIR = tmp_path / "sepa"
    settings.PAYMENTS_RETRY_DAYS = [3, 7]
    return tmp_path
