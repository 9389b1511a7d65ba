"""The app config: where the trace signal is installed (never where the tree is started)."""

import signal
import threading

from django.apps import AppConfig

import websync


class RelayConfig(AppConfig):  # type: ignore[misc]  # Django ships no type information: AppConfig is Any
    name = "examples.django_app.relay_site"

    def ready(self) -> None:
        # ready() may run in a process that never serves a request (the autoreloader's parent,
        # a management command, gunicorn's master with --preload): start nothing here. The tree
        # starts on the first request (relay.TREE). A signal handler costs nothing, and only the
        # main thread may install one. Under gunicorn with --preload, install it from a
        # post_worker_init hook instead (see examples/flask_app/gunicorn.conf.py): gunicorn resets
        # the handlers of the signals it knows in each worker.
        if threading.current_thread() is threading.main_thread():
            websync.install_trace_signal(signal.SIGUSR2)
