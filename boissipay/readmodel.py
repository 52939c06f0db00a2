"""Read models built from events that carry a whole state with a version number."""

from django.db import IntegrityError, models, transaction


def keep_newest(model: type[models.Model], *, pk, version_field: str, fields: dict) -> bool:
    """Create or update `model`'s row `pk` with `fields`, unless the row already holds
    that version or a newer one (events may arrive twice, late or out of order).

    Returns whether the row changed. The row is locked while compared, and a concurrent
    creation (another delivery path) is absorbed."""
    with transaction.atomic():
        current = model._default_manager.select_for_update().filter(pk=pk).first()
        if current is None:
            try:
                with transaction.atomic():
                    model._default_manager.create(pk=pk, **fields)
                return True
            except IntegrityError:  # created concurrently by another delivery path
                current = model._default_manager.select_for_update().get(pk=pk)
        if getattr(current, version_field) >= fields[version_field]:
            return False
        for name, value in fields.items():
            setattr(current, name, value)
        current.save()
        return True
