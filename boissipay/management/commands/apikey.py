from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from boissipay import services
from boissipay.api.auth import SCOPES
from boissipay.models import ApiKey


class Command(BaseCommand):
    help = "Create, list or revoke client API keys."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a key; the raw key is printed once.")
        create.add_argument("name")
        create.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            default=[],
            help=f"Repeatable. One of: {', '.join(SCOPES)}; 'all' for every scope.",
        )
        create.add_argument("--customer", dest="customer_id", help="Restrict the key to this customer id.")
        sub.add_parser("list", help="List keys (never the raw keys).")
        revoke = sub.add_parser("revoke", help="Revoke a key by id.")
        revoke.add_argument("key_id")

    def handle(self, *args, action, **options):
        if action == "create":
            scopes = list(SCOPES) if "all" in options["scopes"] else options["scopes"]
            if not scopes:
                raise CommandError("Give at least one --scope.")
            try:
                key, raw = services.issue_api_key(
                    name=options["name"], scopes=scopes, customer_id=options["customer_id"]
                )
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from None
            self.stdout.write(f"id:     {key.id}\nscopes: {' '.join(key.scopes)}\nkey:    {raw}")
            self.stdout.write(self.style.WARNING("Store the key now: it is not kept and cannot be shown again."))
        elif action == "list":
            for key in ApiKey.objects.order_by("created_at"):
                state = "revoked" if key.revoked_at else "active"
                restriction = f" customer={key.customer_id}" if key.customer_id else ""
                self.stdout.write(
                    f"{key.id}  {key.prefix}…  {state:7}  {key.name}  [{' '.join(key.scopes)}]{restriction}"
                )
        elif action == "revoke":
            try:
                key = services.revoke_api_key(key_id=options["key_id"])
            except (ApiKey.DoesNotExist, ValidationError, ValueError):
                raise CommandError(f"No API key {options['key_id']}.") from None
            self.stdout.write(
                self.style.SUCCESS(
                    f"Revoked {key}: refused everywhere within {settings.API_KEY_CACHE_SECONDS} s "
                    "(web processes keep the keys they have seen that long)."
                )
            )
