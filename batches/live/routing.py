from django.urls import re_path

from batches.live.consumer import BatchConsumer

# Any id segment: a malformed one is refused like a missing batch (4404), not by the router.
websocket_urlpatterns = [
    re_path(r"^ws/v3/batches/(?P<batch_id>[^/]+)/$", BatchConsumer.as_asgi()),
]
