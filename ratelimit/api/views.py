"""Rate-limit and resource endpoints (/api/v3/rate-limit/…, /api/v3/resources/…)."""

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from omtx_hub.errors import InvalidInput
from omtx_hub.requests import request_user
from ratelimit import selectors
from ratelimit.api import schemas
from ratelimit.api.permissions import ManagesAllowList, ManagesBlocks, SeesAllUsage, may
from ratelimit.api.schemas import errors
from ratelimit.blocks import block_ip, unblock_ip
from ratelimit.models import AllowedNetwork, BlockedIP
from ratelimit.quotas import quota_report
from ratelimit.status import limiter_status

# User ids are 32-bit (auth.User's AutoField): a larger one is no id, not a database error.
MAX_USER_ID = 2**31 - 1
USER_ID = OpenApiParameter(
    "user_id",
    {"type": "integer", "minimum": 1, "maximum": MAX_USER_ID},
    description="Another user's entry (staff with view_tierassignment).",
)
IP = OpenApiParameter("ip", str, OpenApiParameter.PATH, description="An IPv4 or IPv6 address.")


class RateLimitStatus(APIView):
    @extend_schema(
        operation_id="rate_limit_status",
        parameters=[USER_ID],
        responses={200: schemas.RateLimitStatusSerializer, **errors(403, 404)},
    )
    def get(self, request: Request) -> Response:
        user_id = request_user(request).pk
        raw = request.query_params.get("user_id")
        if raw is not None:
            if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_USER_ID):
                raise InvalidInput("user_id must be a positive integer.", code="invalid_user_id")
            if int(raw) != user_id and not may(request, "view_tierassignment"):
                self.permission_denied(request, "Only staff may read another user's limits.")
            user_id = get_object_or_404(get_user_model(), pk=int(raw)).pk
        return Response(selectors.user_limits(user_id=user_id))


class BlockedIPCollection(APIView):
    permission_classes = [IsAuthenticated, ManagesBlocks]

    @extend_schema(
        operation_id="rate_limit_blocked_ips", responses={200: schemas.BlockedIPListSerializer, **errors(403)}
    )
    def get(self, request: Request) -> Response:
        return Response({"blocked_ips": [selectors.block_row(row) for row in selectors.blocks_listed()]})

    @extend_schema(
        operation_id="rate_limit_block",
        request=schemas.BlockRequestSerializer,
        responses={201: schemas.BlockedIPSerializer, **errors(403)},
    )
    def post(self, request: Request) -> Response:
        body = schemas.BlockRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        row = block_ip(
            ip=data["ip"],
            reason=BlockedIP.Reason.MANUAL,
            seconds=data.get("seconds"),
            by=request_user(request),
            note=data["note"],
        )
        return Response(selectors.block_row(row), status=status.HTTP_201_CREATED)


class BlockedIPUnblock(APIView):
    permission_classes = [IsAuthenticated, ManagesBlocks]
    write_permission = "change_blockedip"

    @extend_schema(
        operation_id="rate_limit_unblock",
        parameters=[IP],
        request=None,
        responses={200: schemas.UnblockSerializer, **errors(403)},
    )
    def post(self, request: Request, ip: str) -> Response:
        address = schemas.BlockRequestSerializer(data={"ip": ip})
        address.is_valid(raise_exception=True)
        ip = address.validated_data["ip"]
        return Response({"ip": ip, "lifted": unblock_ip(ip=ip, by=request_user(request))})


class AllowedNetworkCollection(APIView):
    permission_classes = [IsAuthenticated, ManagesAllowList]

    @extend_schema(
        operation_id="rate_limit_allowed_networks",
        responses={200: schemas.AllowedNetworkListSerializer, **errors(403)},
    )
    def get(self, request: Request) -> Response:
        networks = AllowedNetwork.objects.order_by("network")
        return Response({"networks": schemas.AllowedNetworkSerializer(networks, many=True).data})

    @extend_schema(
        operation_id="rate_limit_allow",
        request=schemas.AllowedNetworkSerializer,
        responses={201: schemas.AllowedNetworkSerializer, **errors(403, 409)},
    )
    def post(self, request: Request) -> Response:
        body = schemas.AllowedNetworkSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        row = selectors.allow_network(network=body.validated_data["network"], note=body.validated_data["note"])
        return Response(schemas.AllowedNetworkSerializer(row).data, status=status.HTTP_201_CREATED)


class AllowedNetworkDetail(APIView):
    permission_classes = [IsAuthenticated, ManagesAllowList]

    @extend_schema(operation_id="rate_limit_disallow", responses={204: None, **errors(403, 404)})
    def delete(self, request: Request, network_id: int) -> Response:
        selectors.disallow_network(row=get_object_or_404(AllowedNetwork, pk=network_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RateLimitMetrics(APIView):
    permission_classes = [IsAuthenticated, ManagesBlocks]

    @extend_schema(
        operation_id="rate_limit_metrics", responses={200: schemas.RateLimitMetricsSerializer, **errors(403)}
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "limiter": limiter_status(),
                "active_blocks_by_reason": selectors.active_blocks_by_reason(),
                "users_by_tier": selectors.users_by_tier(),
            }
        )


class ResourceQuotas(APIView):
    @extend_schema(operation_id="resources_quotas", responses={200: schemas.QuotasSerializer, **errors()})
    def get(self, request: Request) -> Response:
        return Response(quota_report(user_id=request_user(request).pk))


class ResourceMetrics(APIView):
    permission_classes = [IsAuthenticated, SeesAllUsage]

    @extend_schema(operation_id="resources_metrics", responses={200: schemas.ResourceMetricsSerializer, **errors(403)})
    def get(self, request: Request) -> Response:
        return Response(selectors.resource_metrics())
