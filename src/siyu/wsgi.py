import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
application = get_wsgi_application()

# WeCom / Official Account pushes are answered before Django's request stack (same checks).
from siyu.wecom.fastpath import wrap  # noqa: E402  (needs the apps loaded above)

application = wrap(application)
