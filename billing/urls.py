from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("", views.home, name="home"),
    path("<slug:org_slug>/", views.overview, name="overview"),
    path("<slug:org_slug>/plans/", views.plans, name="plans"),
]
