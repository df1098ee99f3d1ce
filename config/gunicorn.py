"""gunicorn's settings, in production (`config/deploy/billing-web.service` runs
`gunicorn --config config/gunicorn.py config.wsgi`) and in the HTTP benchmark
(bench/bench_http.py), which is how they were chosen (README, Production).

Threaded workers: the calling platform keeps its connections open between requests, which
a thread keeps waiting for it without holding a worker; while one thread waits on
PostgreSQL, the others run. One worker process per CPU core, each with 16 threads: on 2
cores, 2 × 16 served authorizations at least as fast as 4 × 8 or 3 × 4, with fewer
processes (and the same 32 database connections)."""

import os

bind = os.environ.get("WEB_BIND", "127.0.0.1:8000")
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1)
threads = int(os.environ.get("WEB_THREADS", "16"))
# Seconds an idle client connection is kept open: the platform asks before every call.
keepalive = 30
# A request may take up to `timeout` (a data export of a large organization); on stop or
# reload, requests in flight get `graceful_timeout` to finish.
timeout = 120
graceful_timeout = 60
accesslog = "-"
