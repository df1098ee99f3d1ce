"""gunicorn's settings, in production (`config/deploy/billing-web.service` runs
`gunicorn --config config/gunicorn.py config.wsgi`) and in the HTTP benchmark
(bench/bench_http.py), which is how they were chosen (README, Production).

Threaded workers: the calling platform keeps its connections open between requests, which
a thread keeps waiting for it without holding a worker; while one thread waits on
PostgreSQL, the others run. Two worker processes per CPU core, 8 threads each: on 2 cores,
4 × 8 kept authorizations closer to /healthz's pace than 2 × 16 or 3 × 4 did (README,
Production, has the numbers)."""

import os

bind = os.environ.get("WEB_BIND", "127.0.0.1:8000")
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1))
threads = int(os.environ.get("WEB_THREADS", "8"))
# Seconds an idle client connection is kept open: the platform asks before every call.
keepalive = 30
# A request may take up to `timeout` (a data export of a large organization); on stop or
# reload, requests in flight get `graceful_timeout` to finish.
timeout = 120
graceful_timeout = 60
accesslog = "-"
