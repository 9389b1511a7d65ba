"""gunicorn settings for the Flask example: ``gunicorn -c examples/flask_app/gunicorn.conf.py
examples.flask_app.app:app`` from the repository root (add ``--preload``, ``--worker-class
gthread --threads 8`` as you like)."""

import signal

import websync

bind = "127.0.0.1:8000"
workers = 2


def post_worker_init(worker: object) -> None:
    """In each worker, after the fork and after gunicorn set its own signal handlers.

    Starting the tree here connects before the first request (without it, the first request
    starts it); SIGUSR2 sent to a worker's pid toggles the trace of its websync workers.
    """
    from examples import relay

    relay.TREE.start()
    websync.install_trace_signal(signal.SIGUSR2)
