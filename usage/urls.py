from django.urls import path

from usage import views
from usage.alerts import views as alert_views
from usage.budgets import views as budget_views
from usage.caps import views as cap_views
from usage.costs import views as cost_views

app_name = "usage"

urlpatterns = [
    path("<slug:org_slug>/usage/", views.dashboard, name="dashboard"),
    path("<slug:org_slug>/upcoming/", cost_views.upcoming, name="upcoming"),
    path("<slug:org_slug>/costs/", cost_views.costs, name="costs"),
    path("<slug:org_slug>/costs/csv/", cost_views.costs_csv, name="costs_csv"),
    path("<slug:org_slug>/costs/history/", cost_views.costs_history, name="costs_history"),
    path("<slug:org_slug>/costs/rule/", cost_views.allocation_rule, name="cost_rule"),
    path("<slug:org_slug>/usage/alerts/", alert_views.alerts, name="alerts"),
    path("<slug:org_slug>/usage/alerts/add/", alert_views.threshold_add, name="alert_add"),
    path(
        "<slug:org_slug>/usage/alerts/threshold/",
        alert_views.threshold_change,
        name="alert_threshold",
    ),
    path("<slug:org_slug>/usage/alerts/snooze/", alert_views.snooze, name="alert_snooze"),
    path("<slug:org_slug>/usage/caps/", cap_views.caps, name="caps"),
    path("<slug:org_slug>/budgets/", budget_views.budgets, name="budgets"),
    path(
        "<slug:org_slug>/invoices/<str:number>/lines/<int:line_id>/calls/",
        views.line_calls,
        name="line_calls",
    ),
    path("<slug:org_slug>/employees/", views.employees, name="employees"),
    path("<slug:org_slug>/employees/new/", views.employee_create, name="employee_create"),
    path(
        "<slug:org_slug>/employees/<int:employee_id>/deactivate/",
        views.employee_deactivate,
        name="employee_deactivate",
    ),
    path(
        "<slug:org_slug>/employees/<int:employee_id>/reactivate/",
        views.employee_reactivate,
        name="employee_reactivate",
    ),
    path("<slug:org_slug>/phone-numbers/", views.phone_numbers, name="phone_numbers"),
    path("<slug:org_slug>/phone-numbers/new/", views.number_provision, name="number_provision"),
    path(
        "<slug:org_slug>/phone-numbers/<int:number_id>/assign/",
        views.number_assign,
        name="number_assign",
    ),
    path(
        "<slug:org_slug>/phone-numbers/<int:number_id>/release/",
        views.number_release,
        name="number_release",
    ),
]
