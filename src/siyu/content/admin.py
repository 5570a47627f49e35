from django.contrib import admin

from siyu.content.models import Material, MessageTemplate, Script


@admin.register(Material)
class MaterialAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "kind", "category", "workspace", "archived", "updated_at")
    list_filter = ("workspace", "kind", "category", "archived")
    search_fields = ("=id", "title", "keywords")
    raw_id_fields = ("created_by",)


@admin.register(Script)
class ScriptAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "scenario", "workspace", "use_count", "archived", "updated_at")
    list_filter = ("workspace", "scenario", "archived")
    search_fields = ("=id", "title", "keywords")
    raw_id_fields = ("materials",)


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "medium", "purpose", "provider_template", "workspace", "archived", "updated_at")
    list_filter = ("workspace", "medium", "purpose", "archived")
    search_fields = ("=id", "name")
