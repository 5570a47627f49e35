from django.contrib import admin

from siyu.customers.models import Customer, CustomerMerge, Identity, IdentityConflict, StaffRelation


class IdentityInline(admin.TabularInline):
    model = Identity
    extra = 0
    fields = ("type", "app_id", "value", "source", "created_at")


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "city", "source_channel", "store", "owner_staff", "first_seen_at", "merged_into")
    list_filter = ("workspace", "source_channel")
    search_fields = ("=id", "name")
    raw_id_fields = ("store", "owner_staff", "merged_into")
    inlines = [IdentityInline]
    show_full_result_count = False  # a million rows: no COUNT(*) per page


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):
    list_display = ("type", "app_id", "value", "customer", "source", "created_at")
    search_fields = ("=value",)
    raw_id_fields = ("customer",)
    show_full_result_count = False


@admin.register(CustomerMerge)
class CustomerMergeAdmin(admin.ModelAdmin):
    list_display = ("created_at", "survivor", "merged", "reason")
    raw_id_fields = ("survivor", "merged")


@admin.register(IdentityConflict)
class IdentityConflictAdmin(admin.ModelAdmin):
    list_display = ("created_at", "customer", "other_customer", "identity_type", "value", "other_value", "status")
    list_filter = ("status",)
    raw_id_fields = ("customer", "other_customer")


@admin.register(StaffRelation)
class StaffRelationAdmin(admin.ModelAdmin):
    list_display = ("customer", "staff", "added_at", "add_way", "state", "status")
    list_filter = ("status",)
    raw_id_fields = ("customer", "staff")
    show_full_result_count = False
