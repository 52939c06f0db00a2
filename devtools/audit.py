"""The dependency audit (`make audit`, part of `make test`): the pinned requirements
(requirements/prod.txt and requirements.txt) against known vulnerabilities.

1. pip-audit, against PyPI's vulnerability data, when it can reach it.
2. These machines reach PyPI's package index but not its JSON API nor OSV, so pip-audit
   audits nothing there. Then the pinned files are checked offline against
   requirements/advisories.json: the PyPA advisory database (the data behind PyPI's
   answers) filtered to the packages we pin, with the date of its snapshot.
   `python -m devtools.audit --refresh PATH` rebuilds it from a checkout of
   https://github.com/pypa/advisory-database.

Either way it says what it checked, against what, and exits 1 on a known vulnerability."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
PINNED = [ROOT / "requirements" / "prod.txt", ROOT / "requirements.txt"]
SNAPSHOT = ROOT / "requirements" / "advisories.json"


def pinned(path: Path) -> dict[str, str]:
    """name -> version of a pip-compile'd file."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._\-]*)==([^\s;\\]+)", line)
        if match:
            found[canonicalize_name(match[1])] = match[2]
    return found


def online(path: Path) -> tuple[bool, str, int]:
    """(whether pip-audit could audit the file, its report, its exit status)."""
    run = subprocess.run(
        [sys.executable, "-m", "pip_audit", "-r", str(path), "--require-hashes", "--disable-pip", "--format", "json",
         "--progress-spinner", "off", "--timeout", "20"],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    try:
        report = json.loads(run.stdout)
    except ValueError:
        return False, run.stderr.strip()[-500:], run.returncode
    dependencies = report.get("dependencies", [])
    skipped = [d for d in dependencies if d.get("skip_reason")]
    if not dependencies or len(skipped) == len(dependencies):
        return False, f"pip-audit could audit none of {len(dependencies)} packages ({_reason(skipped)})", 0
    vulnerable = [d for d in dependencies if d.get("vulns")]
    lines = [f"{d['name']} {d['version']}: {', '.join(v['id'] for v in d['vulns'])}" for d in vulnerable]
    summary = f"pip-audit: {len(dependencies) - len(skipped)} packages audited, {len(vulnerable)} vulnerable"
    return True, "\n".join([summary, *lines]), 1 if vulnerable else 0


def _reason(skipped: list[dict]) -> str:
    return skipped[0]["skip_reason"] if skipped else "no answer"


def affected(version: str, advisory: dict) -> bool:
    """OSV's rule: listed among the advisory's versions, or inside one of its ranges."""
    if version in advisory["versions"]:
        return True
    try:
        mine = Version(version)
    except InvalidVersion:
        return False
    for events in advisory["ranges"]:
        inside = False
        for kind, at in sorted(events, key=lambda event: Version(event[1]) if event[1] != "0" else Version("0")):
            at_version = Version(at)
            if kind == "introduced" and mine >= at_version:
                inside = True
            elif (kind == "fixed" and mine >= at_version) or (kind == "last_affected" and mine > at_version):
                inside = False
        if inside:
            return True
    return False


def offline(packages: dict[str, str]) -> tuple[str, int]:
    snapshot = json.loads(SNAPSHOT.read_text())
    hits = []
    considered = 0
    for name, version in sorted(packages.items()):
        for advisory in snapshot["advisories"].get(name, []):
            considered += 1
            if affected(version, advisory):
                hits.append(f"{name} {version}: {advisory['id']} {' '.join(advisory['aliases'])}")
    summary = (
        f"offline: {len(packages)} pinned packages checked against {considered} advisories of the PyPA advisory "
        f"database ({snapshot['source']} at {snapshot['commit'][:12]}, {snapshot['date']}); "
        f"{len(hits)} affect the pinned versions"
    )
    return "\n".join([summary, *hits]), 1 if hits else 0


def refresh(database: Path) -> None:
    """Rebuild the snapshot from a checkout of pypa/advisory-database, keeping only the
    packages the pinned files name (any version)."""
    names = set()
    for path in PINNED:
        names |= set(pinned(path))
    advisories: dict[str, list] = {}
    for name in sorted(names):
        folder = database / "vulns" / name
        for file in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            data = yaml.safe_load(file.read_text())
            if data.get("withdrawn"):
                continue  # the advisory was withdrawn (not a vulnerability after all)
            for entry in data.get("affected", []):
                if canonicalize_name(entry["package"]["name"]) != name:
                    continue
                ranges = [
                    [(kind, at) for event in r.get("events", []) for kind, at in event.items()]
                    for r in entry.get("ranges", [])
                    if r.get("type") == "ECOSYSTEM"
                ]
                advisories.setdefault(name, []).append(
                    {"id": data["id"], "aliases": data.get("aliases", []), "versions": entry.get("versions", []),
                     "ranges": ranges}
                )  # fmt: skip
    commit, date = subprocess.run(
        ["git", "log", "-1", "--format=%H %cs"], cwd=database, capture_output=True, text=True, check=True
    ).stdout.split()
    SNAPSHOT.write_text(
        json.dumps(
            {"source": "https://github.com/pypa/advisory-database", "commit": commit, "date": date,
             "licence": "CC-BY-4.0", "advisories": advisories},
            indent=1, sort_keys=True,
        ) + "\n"
    )  # fmt: skip
    print(f"{SNAPSHOT.relative_to(ROOT)}: {sum(map(len, advisories.values()))} advisories for {len(names)} packages")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--refresh", type=Path, help="rebuild requirements/advisories.json from this checkout")
    parser.add_argument("--offline", action="store_true", help="skip pip-audit")
    args = parser.parse_args()
    if args.refresh:
        refresh(args.refresh)
        return 0
    status = 0
    for path in PINNED:
        name = path.relative_to(ROOT)
        audited, report, code = (False, "skipped (--offline)", 0) if args.offline else online(path)
        if audited:
            print(f"{name}: {report}")
        else:
            print(f"{name}: {report}; checking offline instead")
            report, code = offline(pinned(path))
            print(f"{name}: {report}")
        status = max(status, code)
    return status


if __name__ == "__main__":
    sys.exit(main())
