"""Finance operators also correct customers (legal name, billing e-mail, address) and
edit contracts from their pages (issue 17): the customer's change permission joins the
"Opérateur finance" group."""

from django.db import migrations

ROLE = "Opérateur finance"


def grant(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name=ROLE).first()
    permission = Permission.objects.filter(content_type__app_label="contracts", codename="change_customer").first()
    if group is not None and permission is not None:
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    group = Group.objects.filter(name=ROLE).first()
    if group is not None:
        group.permissions.remove(*group.permissions.filter(codename="change_customer"))


class Migration(migrations.Migration):
    dependencies = [
        ("boissipay", "0011_audit_trail"),
        ("contracts", "0006_signed_mandate"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
