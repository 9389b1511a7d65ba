"""A Flask application that embeds websync: a live feed relayed to an endpoint and a request/reply
endpoint, both over long-lived supervised connections (see README.md beside this file).

    GET /feed           the latest messages of the upstream feed (JSON list)
    GET /echo?text=...  asks the upstream API and returns its answer (504 on timeout, 502 if lost)
    GET /status         this worker process: pid, threads, websync statistics
"""

from __future__ import annotations

import logging.config
from typing import Any

from flask import Flask, request

from examples import relay

__all__ = ["app"]

# Before the app exists, as Flask's documentation advises. websync logs on named loggers:
# "websync" (connection events, the trace switch), "websync.trace" (frames, DEBUG, only while
# trace is on), "supervisors" (crashes and restarts).
logging.config.dictConfig(
    {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s [%(process)d] %(name)s %(levelname)s %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
        "loggers": {
            "websync": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "websync.trace": {"handlers": ["stderr"], "level": "DEBUG", "propagate": False},
            "supervisors": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }
)

app = Flask(__name__)


@app.get("/feed")
def feed() -> Any:
    return relay.latest()


@app.get("/echo")
def echo() -> Any:
    return relay.echo(request.args.get("text", ""))


@app.get("/status")
def status() -> Any:
    return relay.status()
