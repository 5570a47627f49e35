from django.contrib import admin

from siyu.org.models import ApiKey, AuditEntry, Membership, OrgUnit, Staff, Workspace


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "time_zone", "created_at")


@admin.register(OrgUnit)
class OrgUnitAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "code", "city", "workspace", "path")
    list_filter = ("workspace", "kind")
    search_fields = ("name", "code")


@admin.register(Staff)
class StaffAdmin(admin.ModelAdmin):
    list_display = ("name", "title", "org_unit", "wecom_userid", "status")
    list_filter = ("workspace", "status")
    search_fields = ("name", "wecom_userid")
    raw_id_fields = ("org_unit",)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "workspace", "role", "org_unit", "staff", "can_view_pii")
    list_filter = ("workspace", "role")
    raw_id_fields = ("org_unit", "staff")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "workspace", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "key_hash")


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "workspace", "user", "api_key", "action", "target")
    list_filter = ("workspace", "action")
    show_full_result_count = False
