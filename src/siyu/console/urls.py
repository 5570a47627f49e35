from django.contrib.auth import views as auth_views
from django.urls import path

from siyu.console import views

app_name = "console"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="console/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="console:login"), name="logout"),
    path("customers/", views.customer_list, name="customers"),
    path("customers/<int:customer_id>/", views.customer_detail, name="customer"),
    path("customers/<int:customer_id>/timeline/", views.customer_timeline, name="customer_timeline"),
    path("customers/<int:customer_id>/tags/", views.customer_tags, name="customer_tags"),
    path("conflicts/", views.conflicts, name="conflicts"),
    path("org/", views.org, name="org"),
    path("staff/", views.staff, name="staff"),
    path("api-keys/", views.api_keys, name="api_keys"),
    path("workspace/", views.switch_workspace, name="switch_workspace"),
]
