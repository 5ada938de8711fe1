"""The account page: tokens are listed, created and revoked here.

Every answer is `Cache-Control: no-store`: the page that shows a new token must not be kept
by the browser or a proxy, and neither must the list. A new token is rendered in the answer
to the POST that created it, never put in the session, so it exists nowhere but that page.
"""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.forms import TokenForm
from accounts.models import ApiToken
from accounts.services import token_create, token_revoke
from omtx_hub.requests import request_user
from ratelimit.auth_limits import token_creation_limited


@never_cache
@login_required
def account(request: HttpRequest) -> HttpResponse:
    return _page(request, TokenForm())


@never_cache
@login_required
@require_POST
@token_creation_limited
def token_new(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    _, raw = token_create(
        user=request_user(request),
        name=form.cleaned_data["name"].strip() or "web",
        expires_in_days=form.cleaned_data["expires_in_days"],
        never_expires=form.cleaned_data["never_expires"],
    )
    return _page(request, TokenForm(), new_token=raw, status=201)


@never_cache
@login_required
@require_POST
def token_delete(request: HttpRequest, token_id: int) -> HttpResponse:
    user = request_user(request)
    token = get_object_or_404(ApiToken, pk=token_id, user=user)
    token_revoke(token=token, actor=user)
    return redirect("account")


def _page(request: HttpRequest, form: TokenForm, *, new_token: str = "", status: int = 200) -> HttpResponse:
    tokens = ApiToken.objects.filter(user=request_user(request))
    context = {"tokens": tokens, "form": form, "new_token": new_token}
    return render(request, "accounts/account.html", context, status=status)
