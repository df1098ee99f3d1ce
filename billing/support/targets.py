"""Response targets in business time: hours counted on weekdays (Monday to Friday) in the
organization's timezone. Pure time arithmetic, no database."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

SATURDAY = 5


def _next_local_midnight(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    local_day = moment.astimezone(zone).date() + dt.timedelta(days=1)
    return dt.datetime.combine(local_day, dt.time(), tzinfo=zone).astimezone(dt.UTC)


def business_deadline(*, start: dt.datetime, hours: int, timezone: str) -> dt.datetime:
    """The moment `hours` of business time after `start`: time on a Saturday or Sunday (local)
    does not count, so a request sent on Friday evening in Tokyo with one business day
    (24 hours) to go is due on Monday evening there."""
    zone = ZoneInfo(timezone)
    moment = start.astimezone(dt.UTC)
    left = dt.timedelta(hours=hours)
    while True:
        day_end = _next_local_midnight(moment, zone)
        if moment.astimezone(zone).weekday() >= SATURDAY:
            moment = day_end
            continue
        if left <= day_end - moment:
            return moment + left
        left -= day_end - moment
        moment = day_end


def business_time_left(*, deadline: dt.datetime, now: dt.datetime, timezone: str) -> dt.timedelta:
    """Business time from `now` to `deadline`; negative (in plain time) once it has passed."""
    if deadline <= now:
        return deadline - now
    zone = ZoneInfo(timezone)
    moment, left = now.astimezone(dt.UTC), dt.timedelta()
    while moment < deadline:
        day_end = min(_next_local_midnight(moment, zone), deadline)
        if moment.astimezone(zone).weekday() < SATURDAY:
            left += day_end - moment
        moment = day_end
    return left
