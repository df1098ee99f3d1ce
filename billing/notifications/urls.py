from django.urls import path

from billing.notifications import views

app_name = "notifications"

urlpatterns = [
    path("<slug:org_slug>/notifications/", views.notification_list, name="list"),
    path("<slug:org_slug>/notifications/read/", views.mark_read, name="mark_read"),
    path("<slug:org_slug>/notifications/settings/", views.notification_settings, name="settings"),
    path("<slug:org_slug>/notifications/webhooks/", views.webhook_add, name="webhook_add"),
    path(
        "<slug:org_slug>/notifications/webhooks/<int:endpoint_id>/<str:action>/",
        views.webhook_action,
        name="webhook_action",
    ),
    path(
        "<slug:org_slug>/notifications/deliveries/<int:delivery_id>/redeliver/",
        views.redeliver,
        name="redeliver",
    ),
]
