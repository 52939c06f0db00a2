import os
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from boissipay import services
from boissipay.api.auth import SCOPES, digest
from boissipay.models import ApiKey

DEMO_KEY_NAME = "demo client system"


def demo_key_file() -> Path:
    """Where the local run keeps its demo key (git-ignored, readable by its owner only):
    only the key's digest is in the database, so the key itself is kept here to be shown
    again at the next start."""
    return Path(settings.LOCAL_DIR) / "demo-api-key"


def demo_api_key() -> tuple[str, str]:
    """(the demo client's key, what became of it): the key kept from the last run while
    it still works, else a new one (and the old one, if any, is revoked)."""
    path = demo_key_file()
    kept = path.read_text().strip() if path.exists() else ""
    if kept and ApiKey.objects.filter(digest=digest(kept), name=DEMO_KEY_NAME, revoked_at__isnull=True).exists():
        return kept, "kept from the last run"
    for old in ApiKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True):
        services.revoke_api_key(key_id=old.pk)
    _, raw = services.issue_api_key(name=DEMO_KEY_NAME, scopes=list(SCOPES))
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(raw + "\n")
    note = "new: the previous demo key no longer worked and is revoked" if kept else "new"
    return raw, note


class Command(BaseCommand):
    help = "For a local run: create the back-office superuser and a demo client API key, and print the URLs."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default=None, help="default: BOISSIPAY_BASE_URL")

    def handle(self, *args, base_url, **options):
        if not settings.DEBUG:
            raise CommandError(
                "bootstrap_local creates a superuser with a known password: it is for local runs only (DEBUG=1). "
                "In production, create staff accounts with `manage.py createsuperuser`."
            )
        base_url = (base_url or settings.BASE_URL).rstrip("/")
        username = os.environ.get("BOISSIPAY_ADMIN_USER", "admin")
        password = os.environ.get("BOISSIPAY_ADMIN_PASSWORD", "admin")
        User = get_user_model()
        if not User.objects.filter(username=username).exists():
            User.objects.create_superuser(username=username, email="admin@boissipay.example", password=password)
            admin_line = f"{username} / {password}"
        else:
            admin_line = f"{username} (existing account; password unchanged)"
        raw, key_note = demo_api_key()
        self.stdout.write(
            "\n".join(
                [
                    "",
                    self.style.SUCCESS("Boissipay is starting"),
                    f"  API:          {base_url}/api/v1/",
                    f"  Swagger UI:   {base_url}/api/docs/",
                    f"  ReDoc:        {base_url}/api/redoc/",
                    f"  Admin:        {base_url}/admin/   ({admin_line})",
                    f"  Health:       {base_url}/api/health",
                    f"  Demo API key: {raw}   ({key_note})",
                    f'  Try:          curl -H "Authorization: Api-Key {raw}" {base_url}/api/v1/contracts',
                    "",
                ]
            )
        )
