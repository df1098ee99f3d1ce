"""The staff roles as permission groups: Support, Finance and Catalog, with the permissions
`billing/accounts/roles.py` lists as they stood then (a later change comes with its own
migration); and the audit log of what staff do."""

import django.db.models.deletion
from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations, models

# Finance holds everything Support does, then what moves money.
SUPPORT_PERMISSIONS = [
    "billing.view_billing",
    "billing.view_auditentry",
    "billing.view_organization",
    "billing.view_membership",
    "billing.view_subscription",
    "billing.view_featuretrial",
    "billing.view_feature",
    "billing.view_plan",
    "billing.view_invoice",
    "billing.view_invoiceline",
    "billing.view_pendingline",
    "billing.view_creditnote",
    "billing.view_coupon",
    "billing.view_discount",
    "billing.view_taxrate",
    "billing.view_balanceentry",
    "billing.view_notification",
    "billing.view_delivery",
    "usage.view_aiemployee",
    "usage.view_phonenumber",
    "usage.view_phonenumberrate",
    "usage.view_call",
    "usage.view_usagecounter",
    "usage.view_usagereport",
    "payments.view_paymentattempt",
    "payments.view_paymentmethod",
    "payments.view_collection",
    "payments.view_refund",
    "billing.view_billingrequest",
    "billing.view_billingrequestmessage",
    "billing.view_disputedcall",
    "billing.view_referral",
    "usage.view_spendcap",
    "usage.view_spendcapchange",
    "usage.view_budgetchange",
    "billing.view_renewalrun",
    "payments.add_paymentattempt",
    "billing.retry_payment",
    "billing.extend_trial",
    "billing.add_featuretrial",
    "billing.resend_notification",
    "billing.call_off_scheduled_change",
    "billing.change_billingrequest",
    "usage.change_aiemployee",
    "usage.change_phonenumber",
]

ROLE_PERMISSIONS = {
    "Support": SUPPORT_PERMISSIONS,
    "Finance": [
        *SUPPORT_PERMISSIONS,
        "billing.add_creditnote",
        "billing.add_balanceentry",
        "billing.void_invoice",
        "billing.add_coupon",
        "billing.change_coupon",
        "billing.add_discount",
        "billing.record_bank_transfer",
        "billing.add_taxrate",
        "billing.change_taxrate",
        "payments.add_refund",
        "billing.manage_subscription",
        "billing.add_organization",
        "billing.change_organization",
        "billing.add_membership",
        "billing.change_membership",
        "billing.delete_membership",
    ],
    "Catalog": [
        "billing.view_feature",
        "billing.view_plan",
        "usage.view_phonenumberrate",
        "billing.view_organization",
        "billing.add_feature",
        "billing.change_feature",
        "billing.add_plan",
        "billing.change_plan",
        "usage.add_phonenumberrate",
        "usage.change_phonenumberrate",
    ],
}


def groups_create(apps, schema_editor):
    # Permissions are made after every migration has run; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, granted in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        permissions = []
        for label in granted:
            app_label, codename = label.split(".")
            permissions.append(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(permissions)


def groups_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0015_renewal_runs"),
        ("usage", "0009_budget_changes"),
        ("payments", "0008_djstripe_mirror"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="invoice",
            options={
                "ordering": ["-period_start", "-pk"],
                "permissions": [
                    ("void_invoice", "Can void an invoice"),
                    ("retry_payment", "Can retry collecting an invoice"),
                    ("record_bank_transfer", "Can record a bank transfer paying an invoice"),
                ],
            },
        ),
        migrations.AlterModelOptions(
            name="notification",
            options={
                "ordering": ["-created_at", "-pk"],
                "permissions": [("resend_notification", "Can resend notices and deliveries")],
            },
        ),
        migrations.AlterModelOptions(
            name="organization",
            options={
                "ordering": ["name"],
                "permissions": [
                    ("view_billing", "Can read every organization's billing pages and export")
                ],
            },
        ),
        migrations.AlterModelOptions(
            name="subscription",
            options={
                "ordering": ["-created_at"],
                "permissions": [
                    ("extend_trial", "Can extend a trial"),
                    ("call_off_scheduled_change", "Can call off a scheduled plan change"),
                    ("manage_subscription", "Can change the plan, cancel, reactivate or renew"),
                ],
            },
        ),
        migrations.CreateModel(
            name="AuditEntry",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("at", models.DateTimeField()),
                ("actor_name", models.CharField(max_length=150)),
                ("action", models.CharField(max_length=100)),
                ("object_type", models.CharField(help_text="app_label.model", max_length=100)),
                ("object_id", models.CharField(blank=True, max_length=64)),
                ("object_repr", models.CharField(blank=True, max_length=200)),
                ("changes", models.JSONField(blank=True, default=dict)),
                ("reason", models.TextField(blank=True)),
                (
                    "actor",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "organization",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="audit_entries",
                        to="billing.organization",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "audit entries",
                "ordering": ["-at", "-pk"],
                "indexes": [
                    models.Index(fields=["organization", "-at"], name="audit_by_organization"),
                    models.Index(fields=["-at"], name="audit_newest_first"),
                ],
            },
        ),
        migrations.RunPython(groups_create, groups_delete),
    ]
