"""The ASGI application daphne serves (docs/live-status.md): HTTP through Django, websockets
through channels (`/ws/v3/batches/<id>/`, `/ws/v3/monitoring/`).

    daphne -b 0.0.0.0 -p 8001 omtx_hub.asgi:application
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omtx_hub.settings")
# Under ASGI, persistent connections leak (Django ticket 33497: each request's and each
# consumer call's thread keeps its own). This process closes them after each use unless the
# operator says otherwise, before the settings read the variable.
os.environ.setdefault("DB_CONN_MAX_AGE", "0")
# Built before the routes are imported: it sets Django up, and the routes import models.
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from batches.live.routing import websocket_urlpatterns as batch_routes  # noqa: E402
from monitoring.routing import websocket_urlpatterns as monitoring_routes  # noqa: E402
from omtx_hub import ws_buffer  # noqa: E402
from omtx_hub.ws_auth import OriginCheck, WebsocketAuthStack  # noqa: E402

# A client that stops reading is dropped past OMTX_LIVE_MAX_BUFFER_BYTES unsent (ws_buffer.py).
ws_buffer.install()

application = ProtocolTypeRouter(
    {
        "http": django_application,
        # Origin checked against ALLOWED_HOSTS: a page of another site cannot open a socket
        # with the user's cookie. Clients that send no Origin (scripts) pass (ws_auth.py).
        "websocket": OriginCheck(WebsocketAuthStack(URLRouter([*batch_routes, *monitoring_routes]))),
    }
)
