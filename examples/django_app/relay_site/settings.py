"""Settings of the Django example: no database, no templates, three JSON views and websync logging."""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["examples.django_app.relay_site.apps.RelayConfig"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "examples.django_app.relay_site.urls"
WSGI_APPLICATION = "examples.django_app.relay_site.wsgi.application"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

# websync logs on named loggers: "websync" (connection events, the trace switch), "websync.trace"
# (every frame, at DEBUG, only while trace is on), "supervisors" (crashes and restarts).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s [%(process)d] %(name)s %(levelname)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "websync": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "websync.trace": {"handlers": ["console"], "level": "DEBUG", "propagate": False},
        "supervisors": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
