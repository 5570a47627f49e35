from django.urls import path

from siyu.channels.email import views

urlpatterns = [
    path("u/<str:token>", views.unsubscribe, name="email_unsubscribe"),
]
