from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.models import ApiToken
from accounts.services import token_create, token_revoke
from omtx_hub.requests import request_user
from ratelimit.auth_limits import token_creation_limited


@login_required
def account(request: HttpRequest) -> HttpResponse:
    tokens = ApiToken.objects.filter(user=request_user(request))
    new_token = request.session.pop("new_token", None)
    return render(request, "accounts/account.html", {"tokens": tokens, "new_token": new_token})


@login_required
@require_POST
@token_creation_limited
def token_new(request: HttpRequest) -> HttpResponse:
    name = (request.POST.get("name") or "web").strip()[:100]
    _, raw = token_create(user=request_user(request), name=name)
    # Shown once on the next page load, never stored in clear.
    request.session["new_token"] = raw
    return redirect("account")


@login_required
@require_POST
def token_delete(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    token_revoke(token=token)
    return redirect("account")
