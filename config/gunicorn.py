"""gunicorn's settings in production (`config/deploy/billing-web.service` runs
`gunicorn -c config/gunicorn.py config.wsgi`) and in the HTTP benchmark (bench/bench_http.py).

Chosen by measurement on 2 cores (README, Benchmarks): threaded workers keep the platform's
connections open between requests, and while one thread waits on PostgreSQL another runs."""

import os

bind = os.environ.get("WEB_BIND", "127.0.0.1:8000")
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
threads = int(os.environ.get("WEB_THREADS", "8"))
keepalive = int(os.environ.get("WEB_KEEPALIVE", "30"))
