"""Requests per API key are limited: API_RATE_LIMIT_PER_MINUTE (60,000, that is 1,000 a
second, by default; 0 turns it off). Over it, 429 problem+json with Retry-After (the end
of the minute).

A fixed window per key and minute, counted with one cache increment per request (DRF's
SimpleRateThrottle keeps every request's time in the cache, which costs more as the
limit grows). Counted in the cache: per web process unless CACHES names a shared one
(Redis), as for the failed-key throttling."""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

WINDOW_SECONDS = 60


class ApiKeyRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        limit = settings.API_RATE_LIMIT_PER_MINUTE
        key = getattr(request.auth, "pk", None)
        if not limit or key is None:
            return True
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        self.seconds_left = WINDOW_SECONDS - (now % WINDOW_SECONDS)
        cache_key = f"api-rate:{key}:{window}"
        try:
            count = cache.incr(cache_key)
        except ValueError:  # the window's first request (or another process's, just now)
            count = 1 if cache.add(cache_key, 1, timeout=WINDOW_SECONDS + 5) else cache.incr(cache_key)
        return count <= limit

    def wait(self) -> float:
        return math.ceil(self.seconds_left)
