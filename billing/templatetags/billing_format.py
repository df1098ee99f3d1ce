"""`{% load billing_format %}`: how amounts, rates and allowances read (`billing.web.formatting`)."""

from django import template

from billing.web import formatting

register = template.Library()

register.filter("rate", formatting.rate)
register.filter("allowance", formatting.allowance)
register.filter("seconds_and_minutes", formatting.seconds_and_minutes)
register.filter("period_label", formatting.period_label)
register.filter("difference", formatting.difference)
register.simple_tag(formatting.subscription_status, name="subscription_status")
