"""The old, synchronous callback path (see ``benchmarks._sync_settings``): store the receipt,
then claim, handle and mark it in the request before answering."""

from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from siyu.urls import urlpatterns as siyu_urlpatterns
from siyu.wecom import inbox, views


@csrf_exempt
def sync_wecom_callback(request, slug):
    response = views.wecom_callback(request, slug)
    if response.status_code == 200 and request.method == "POST":
        inbox.process_pending(limit=1)
    return response


urlpatterns = [path("callbacks/wecom/<slug:slug>/", sync_wecom_callback), *siyu_urlpatterns]
