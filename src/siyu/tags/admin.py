from django.contrib import admin

from siyu.tags.models import CustomerTag, Tag, TagGroup


@admin.register(TagGroup)
class TagGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "workspace", "sort")


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "group", "workspace", "sort")
    list_filter = ("workspace", "group")


@admin.register(CustomerTag)
class CustomerTagAdmin(admin.ModelAdmin):
    list_display = ("customer", "tag", "source", "source_ref", "created_at")
    list_filter = ("source",)
    raw_id_fields = ("customer", "tag", "added_by_user", "added_by_staff")
    show_full_result_count = False
