"""At sign-in (any sign-in: the billing pages', the admin's), the session learns what the
middleware needs to know on every request without asking the database."""

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.utils import timezone

from billing.security import selectors
from billing.security.middleware import STAFF_LAST_SEEN


@receiver(user_logged_in, dispatch_uid="billing.security.session_at_sign_in")
def session_at_sign_in(sender, request, user, **kwargs):
    request.session[selectors.SECOND_FACTOR_DUE] = selectors.second_factor_enabled(user=user)
    if user.is_staff:
        request.session[STAFF_LAST_SEEN] = timezone.now().timestamp()
