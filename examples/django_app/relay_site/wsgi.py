"""The WSGI entry point: ``gunicorn examples.django_app.relay_site.wsgi:application`` from the repository root."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.relay_site.settings")
application = get_wsgi_application()
