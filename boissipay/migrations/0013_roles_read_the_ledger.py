"""The ledger (accounting, issue 17) in the staff roles: credit control and finance
operators read it and download the FEC; administrators hold every permission of it.
Nobody edits an entry: they are written from the events."""

from django.db import migrations

READERS = ("Contrôle crédit (lecture)", "Opérateur finance")
ADMINISTRATOR = "Administrateur"


def grant(apps, schema_editor):
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    create_permissions(global_apps.get_app_config("accounting"), verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ledger = Permission.objects.filter(content_type__app_label="accounting")
    for group in Group.objects.filter(name__in=READERS):
        group.permissions.add(*ledger.filter(codename__startswith="view_"))
    for group in Group.objects.filter(name=ADMINISTRATOR):
        group.permissions.add(*ledger)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.filter(name__in=(*READERS, ADMINISTRATOR)):
        group.permissions.remove(*group.permissions.filter(content_type__app_label="accounting"))


class Migration(migrations.Migration):
    dependencies = [
        ("boissipay", "0012_operators_correct_customers"),
        ("accounting", "0001_ledger"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
