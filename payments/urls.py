from django.urls import path

from payments import views

app_name = "payments"

methods = "<slug:org_slug>/payment-methods/"

urlpatterns = [
    path(methods, views.methods, name="methods"),
    path(f"{methods}add-card/", views.method_add_card, name="method_add_card"),
    path(
        f"{methods}add-bank-account/",
        views.method_add_bank_account,
        name="method_add_bank_account",
    ),
    path(f"{methods}setup-stripe/", views.method_setup_stripe, name="method_setup_stripe"),
    path(f"{methods}add-stripe/", views.method_add_stripe, name="method_add_stripe"),
    path(f"{methods}<int:method_id>/default/", views.method_make_default, name="method_default"),
    path(f"{methods}<int:method_id>/up/", views.method_up, name="method_up"),
    path(f"{methods}<int:method_id>/down/", views.method_down, name="method_down"),
    path(f"{methods}<int:method_id>/edit/", views.method_edit, name="method_edit"),
    path(f"{methods}<int:method_id>/remove/", views.method_remove, name="method_remove"),
    path("<slug:org_slug>/invoices/<str:number>/pay/", views.pay_now, name="pay_now"),
]
