import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from boissipay import services
from boissipay.api.auth import SCOPES
from boissipay.models import ApiKey

DEMO_KEY_NAME = "demo client system"


class Command(BaseCommand):
    help = "For a local run: create the back-office superuser and a demo client API key, and print the URLs."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, base_url, **options):
        username = os.environ.get("BOISSIPAY_ADMIN_USER", "admin")
        password = os.environ.get("BOISSIPAY_ADMIN_PASSWORD", "admin")
        User = get_user_model()
        if not User.objects.filter(username=username).exists():
            User.objects.create_superuser(username=username, email="admin@boissipay.example", password=password)
            admin_line = f"{username} / {password}"
        else:
            admin_line = f"{username} (existing account; password unchanged)"
        # A fresh demo key each run: only its digest is stored, so the old one cannot be shown.
        for old in ApiKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True):
            services.revoke_api_key(key_id=old.pk)
        _, raw = services.issue_api_key(name=DEMO_KEY_NAME, scopes=list(SCOPES))
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
                    f"  Demo API key: {raw}",
                    f'  Try:          curl -H "Authorization: Api-Key {raw}" {base_url}/api/v1/contracts',
                    "",
                ]
            )
        )
