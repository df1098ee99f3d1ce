"""Django's PostgreSQL backend, health-checking a kept connection less often.

Django checks a kept connection (`CONN_HEALTH_CHECKS`) with a round trip at the start of
every request that uses it: as much as the question the platform asks before every call
costs. Here it is checked only when its last check, or its opening, is more than
`CONN_HEALTH_CHECK_SECONDS` old: a connection that went stale while idle (a restarted
server, a firewall's idle timeout) is still replaced before a request uses it, while one in
constant use is checked every few seconds instead of on every request. A connection that
breaks in between fails its request, and Django closes it at that request's end."""

from __future__ import annotations

from time import monotonic

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    checked_at = float("-inf")  # monotonic() of the last check, or of the opening

    def connect(self):
        super().connect()
        self.checked_at = monotonic()

    def close_if_health_check_failed(self):
        if self.health_check_enabled and not self.health_check_done and self.connection:
            if monotonic() - self.checked_at < self.settings_dict.get(
                "CONN_HEALTH_CHECK_SECONDS", 0
            ):
                self.health_check_done = True
                return
            self.checked_at = monotonic()
        super().close_if_health_check_failed()
