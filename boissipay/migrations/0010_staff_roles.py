"""Staff roles (issue 17), as Django groups: what each may see and do in the back office.

- Contrôle crédit (lecture): sees every record of the four contexts and the event
  backbone; changes nothing.
- Opérateur finance: the day's work: suspends and reactivates contracts, sets travellers'
  caps, runs billing, issues credit notes, resends invoices, records payments received,
  imports bank files, retries debits, exports refunds, replays dead letters.
- Administrateur: everything, staff accounts and API keys included.

Permissions are created here first (Django creates them after migrating, which is too
late on a fresh database). Re-running changes nothing; staff are put in groups by an
administrator."""

from django.db import migrations

APPS = ("contracts", "billing", "invoicing", "payments", "boissipay")
OPERATOR = {
    "contracts": ["change_contract", "change_subscriber"],
    "invoicing": ["add_billingrun", "change_billingrun", "add_invoice", "change_invoice"],
    "payments": [
        "change_payment",
        "add_manualpayment",
        "add_bankfile",
        "add_refundexport",
        "change_refund",
    ],
    "boissipay": ["change_deadletter"],
}
ROLES = ("Contrôle crédit (lecture)", "Opérateur finance", "Administrateur")


def create_roles(apps, schema_editor):
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ours = Permission.objects.filter(content_type__app_label__in=APPS)
    viewing = ours.filter(codename__startswith="view_").exclude(codename="view_apikey")
    operating = Permission.objects.none()
    for app, codenames in OPERATOR.items():
        operating = operating | ours.filter(content_type__app_label=app, codename__in=codenames)
    administering = ours | Permission.objects.filter(content_type__app_label__in=("auth", "django_celery_beat"))
    for name, permissions in zip(ROLES, (viewing, viewing | operating, administering), strict=True):
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(permissions.distinct())


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("boissipay", "0009_dead_letters_resolved"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contracts", "0003_vat_scheme"),
        ("billing", "0007_operation_travel_date"),
        ("invoicing", "0011_einvoicing_platform"),
        ("payments", "0008_einvoicing_hold"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
