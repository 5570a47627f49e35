from django.apps import AppConfig


class WorkbenchConfig(AppConfig):
    name = "siyu.workbench"
    label = "workbench"
    verbose_name = "员工工作台"
