"""Manual tagging from the console: scoped, audited."""

from __future__ import annotations

from siyu.core import clock
from siyu.core.errors import NotFound
from siyu.customers.models import Customer
from siyu.customers.services import mark_changed
from siyu.org.models import Workspace
from siyu.org.services import audit
from siyu.tags.models import CustomerTag, Tag, TagSource


def add_tag(workspace: Workspace, customer: Customer, tag_id: int, *, user=None, staff_id: int | None = None) -> bool:
    """Tag a customer the caller may see; False if it already carried the tag."""
    tag = Tag.objects.filter(workspace=workspace, pk=tag_id).first()
    if tag is None:
        raise NotFound("tag not found", field="tag")
    _, created = CustomerTag.objects.get_or_create(
        customer=customer,
        tag=tag,
        defaults={
            "workspace": workspace,
            "source": TagSource.MANUAL,
            "source_ref": "console",
            "added_by_user": user,
            "added_by_staff_id": staff_id,
            "created_at": clock.now(),
        },
    )
    if created:
        mark_changed(workspace.pk, [customer.pk])
        audit(
            workspace=workspace,
            action="tag.add",
            target=f"customer:{customer.pk}",
            user=user,
            details={"tag": tag.pk, "name": tag.name},
        )
    return created


def remove_tag(workspace: Workspace, customer: Customer, tag_id: int, *, user=None) -> bool:
    deleted, _ = CustomerTag.objects.filter(workspace=workspace, customer=customer, tag_id=tag_id).delete()
    if deleted:
        mark_changed(workspace.pk, [customer.pk])
        audit(
            workspace=workspace,
            action="tag.remove",
            target=f"customer:{customer.pk}",
            user=user,
            details={"tag": tag_id},
        )
    return bool(deleted)
