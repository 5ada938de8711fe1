"""v3 webhook endpoints: the caller's secret and the caller's deliveries (docs/webhooks.md)."""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from batches.api import schemas as api_schemas
from batches.api.pagination import Pagination
from batches.api.schema_inputs import PAGE
from batches.webhooks import representations as rep
from batches.webhooks import schemas
from batches.webhooks.deliveries import delivery_redeliver
from batches.webhooks.keys import secret_get, secret_rotate
from batches.webhooks.models import DeliveryStatus, WebhookEvent
from batches.webhooks.selectors import delivery_get, delivery_list
from omtx_hub.requests import request_user

DELIVERY_ID = OpenApiParameter(
    "delivery_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The delivery id (X-OMTX-Delivery)."
)
DELIVERY_FILTERS = [
    OpenApiParameter("batch", OpenApiTypes.UUID, description="Only this batch's deliveries."),
    OpenApiParameter("status", {"type": "string", "enum": DeliveryStatus.values}, description="Only this status."),
    OpenApiParameter("event", {"type": "string", "enum": WebhookEvent.values}, description="Only this event."),
]
# The new secret is in the answer: no browser or proxy may keep it.
NO_STORE = {"Cache-Control": "no-store"}


class SecretState(APIView):
    @extend_schema(
        operation_id="webhooks_secret",
        responses={200: schemas.SecretStateSerializer, **api_schemas.errors()},
    )
    def get(self, request: Request) -> Response:
        secret = secret_get(user=request_user(request))
        return Response(rep.secret_state(secret, now=timezone.now()))


class SecretRotate(APIView):
    @extend_schema(
        operation_id="webhooks_secret_rotate",
        request=None,
        responses={
            201: OpenApiResponse(
                schemas.NewSecretSerializer,
                description="A new secret, shown this once. The previous one still signs for the grace period.",
            ),
            **api_schemas.errors(),
        },
    )
    def post(self, request: Request) -> Response:
        secret = secret_rotate(user=request_user(request))
        body = rep.new_secret(secret, now=timezone.now())
        return Response(body, status=status.HTTP_201_CREATED, headers=NO_STORE)


class DeliveryCollection(APIView):
    @extend_schema(
        operation_id="webhooks_deliveries_list",
        parameters=[*PAGE, *DELIVERY_FILTERS],
        responses={200: schemas.DeliveryPageSerializer, **api_schemas.errors()},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        deliveries = delivery_list(
            user=request_user(request),
            batch_id=params.get("batch"),
            status=params.get("status"),
            event=params.get("event"),
        )
        paginator = Pagination()
        page = paginator.paginate_queryset(deliveries, request, view=self) or []
        return paginator.get_paginated_response([rep.delivery(row, request) for row in page])


class DeliveryDetail(APIView):
    @extend_schema(
        operation_id="webhooks_deliveries_retrieve",
        parameters=[DELIVERY_ID],
        responses={200: schemas.DeliveryDetailSerializer, **api_schemas.errors(404)},
    )
    def get(self, request: Request, delivery_id: str) -> Response:
        row = delivery_get(user=request_user(request), delivery_id=delivery_id)
        return Response(rep.delivery_detail(row, request))


class DeliveryRedeliver(APIView):
    @extend_schema(
        operation_id="webhooks_deliveries_redeliver",
        request=None,
        parameters=[DELIVERY_ID],
        responses={
            202: OpenApiResponse(schemas.DeliveryDetailSerializer, description="Queued to be sent again now."),
            **api_schemas.errors(404, 409),
        },
    )
    def post(self, request: Request, delivery_id: str) -> Response:
        row = delivery_get(user=request_user(request), delivery_id=delivery_id)
        row = delivery_redeliver(delivery=row)
        return Response(rep.delivery_detail(row, request), status=status.HTTP_202_ACCEPTED)
