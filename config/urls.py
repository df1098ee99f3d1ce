from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path
from django.views.generic import RedirectView

from billing.security import views as security_views
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
    # Before the pages: URLs are tried in order, and the platform asks before every call.
    path("api/v1/", api.urls),
    path("accounts/login/", security_views.login, name="login"),
    path("accounts/logout/", security_views.logout, name="logout"),
    path("accounts/", include("billing.security.urls")),
    path("billing/", include("billing.urls")),
    path("billing/", include("billing.notifications.urls")),
    path("billing/", include("usage.urls")),
    path("billing/", include("payments.urls")),
    path("payments/", include("payments.urls_webhooks")),
    path("admin/", admin.site.urls),
]
