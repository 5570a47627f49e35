"""Django's WSGI application without ``siyu.wecom.fastpath`` in front: for the callbacks
benchmark's "through Django's stack" and old-path runs."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
application = get_wsgi_application()
