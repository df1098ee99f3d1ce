from django.urls import path

from billing import views
from billing.support import views as support_views

app_name = "billing"

urlpatterns = [
    path("", views.home, name="home"),
    path("<slug:org_slug>/", views.overview, name="overview"),
    path("<slug:org_slug>/plans/", views.plans, name="plans"),
    path("referrals/join/<str:code>/", views.referral, name="referral"),
    path("<slug:org_slug>/invoices/", views.invoices, name="invoices"),
    path("<slug:org_slug>/promotions/redeem/", views.promotion_redeem, name="promotion_redeem"),
    path("<slug:org_slug>/invoices/<str:number>/", views.invoice, name="invoice"),
    path("<slug:org_slug>/invoices/<str:number>/pdf/", views.invoice_pdf, name="invoice_pdf"),
    path("<slug:org_slug>/export/", views.export, name="export"),
    path("<slug:org_slug>/settings/", views.billing_settings, name="settings"),
    path("<slug:org_slug>/plans/<int:plan_id>/change/", views.plan_change, name="plan_change"),
    path(
        "<slug:org_slug>/plans/scheduled-change/cancel/",
        views.scheduled_change_cancel,
        name="scheduled_change_cancel",
    ),
    path("<slug:org_slug>/cancel/", views.cancel, name="cancel"),
    path("<slug:org_slug>/reactivate/", views.reactivate, name="reactivate"),
    path("<slug:org_slug>/support/", support_views.support, name="support"),
    path(
        "<slug:org_slug>/support/<int:request_id>/reply/",
        support_views.support_reply,
        name="support_reply",
    ),
    path(
        "<slug:org_slug>/support/attachments/<int:message_id>/",
        support_views.support_attachment,
        name="support_attachment",
    ),
]
