from django.urls import path

from . import views

urlpatterns = [
    path("feed", views.feed),
    path("echo", views.echo),
    path("status", views.status),
]
