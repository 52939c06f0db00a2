"""The offline half of the dependency audit (devtools.audit): OSV's affected-version rule
and the pinned files read as they are."""

from devtools import audit

DJANGO_2024 = {
    "id": "PYSEC-2024-70",
    "aliases": ["CVE-2024-42005"],
    "versions": ["4.2", "4.2.1"],
    "ranges": [[("introduced", "5.0"), ("fixed", "5.0.8"), ("introduced", "4.2"), ("fixed", "4.2.15")]],
}


def test_a_version_inside_a_range_or_listed_is_affected_and_a_fixed_one_is_not():
    assert audit.affected("5.0.7", DJANGO_2024)
    assert audit.affected("4.2.14", DJANGO_2024)
    assert audit.affected("4.2.1", DJANGO_2024)
    assert not audit.affected("5.0.8", DJANGO_2024)
    assert not audit.affected("5.2.19", DJANGO_2024)
    assert not audit.affected("4.1.9", DJANGO_2024)


def test_last_affected_closes_a_range_after_that_version():
    advisory = {"id": "X", "aliases": [], "versions": [], "ranges": [[("introduced", "0"), ("last_affected", "2.1")]]}
    assert audit.affected("2.1", advisory) and audit.affected("0.1", advisory)
    assert not audit.affected("2.1.1", advisory)


def test_the_pinned_files_are_read_with_every_package_and_its_version():
    production = audit.pinned(audit.PINNED[0])
    assert production["django"] == "5.2.19"
    assert production["psycopg-binary"] == "3.3.9"
    assert "pytest" not in production and "pytest" in audit.pinned(audit.PINNED[1])


def test_the_committed_snapshot_has_no_advisory_against_the_pinned_versions():
    report, status = audit.offline(audit.pinned(audit.PINNED[1]))
    assert status == 0, report
    assert "0 affect the pinned versions" in report
