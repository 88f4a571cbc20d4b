"""The Celery side of bench/compare.py: one app with the same no-op task runplane runs.

The worker and the client read the Redis URL (broker and result backend) from
BENCH_CELERY_REDIS_URL; everything else is Celery's default.
"""

from __future__ import annotations

import os

from celery import Celery

REDIS_URL = os.environ.get("BENCH_CELERY_REDIS_URL", "redis://127.0.0.1:6379/13")

app = Celery("bench_noop", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(broker_connection_retry_on_startup=True, result_expires=600)


@app.task(name="noop")
def noop(name: str = "") -> dict[str, str]:
    return {}


@app.task(name="hello")
def hello(name: str = "world") -> dict[str, str]:
    return {"greeting": f"Hello, {name}!"}
