from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponse
from django.urls import include, path
from django.views.generic import RedirectView

from usage.api import api


def healthz(request):
    """Liveness probe for load balancers; touches nothing."""
    return HttpResponse("ok", content_type="text/plain")


admin.site.site_header = "Billing back office"
admin.site.site_title = "Billing back office"
admin.site.index_title = "Support"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="billing:home"), name="root"),
    path("healthz", healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("billing/", include("billing.urls")),
    path("billing/", include("billing.notifications.urls")),
    path("billing/", include("usage.urls")),
    path("billing/", include("payments.urls")),
    path("api/v1/", api.urls),
    path("payments/", include("payments.urls_webhooks")),
    path("admin/", admin.site.urls),
]
