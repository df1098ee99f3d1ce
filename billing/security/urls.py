from django.urls import path

from billing.security import views

app_name = "security"

urlpatterns = [
    path("two-factor/", views.verify, name="verify"),
    path("two-factor/setup/", views.setup, name="setup"),
    path("two-factor/recovery-codes/", views.recovery_codes, name="recovery_codes"),
    path("security/", views.account, name="account"),
    path("security/two-factor/off/", views.disable, name="disable"),
]
