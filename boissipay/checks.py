"""Deployment checks of our own (`manage.py check --deploy --database default`)."""

from django.core.checks import Error, Tags, register

# The local run's back-office password (devtools bootstrap_local) and the obvious ones.
KNOWN_PASSWORDS = ("admin", "password", "boissipay", "changeme")


@register(Tags.security, deploy=True, database=True)
def no_staff_account_with_a_known_password(app_configs=None, databases=None, **kwargs):
    """No active staff account whose password is well known (the local run's `admin` /
    `admin`, its own user name...). Asks the database, so only with `--database`."""
    if not databases:
        return []
    from django.contrib.auth import get_user_model

    errors = []
    for alias in databases:
        staff = get_user_model().objects.using(alias).filter(is_active=True, is_staff=True)
        for user in staff:
            if any(user.check_password(known) for known in (*KNOWN_PASSWORDS, user.get_username())):
                errors.append(
                    Error(
                        f"The staff account {user.get_username()!r} has a well-known password.",
                        hint="Set a password only its owner knows (manage.py changepassword), or deactivate it.",
                        id="boissipay.E001",
                    )
                )
    return errors
