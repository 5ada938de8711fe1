from typing import Any

from django import forms
from django.conf import settings

from accounts.services import MAX_TOKEN_LIFETIME_DAYS


class TokenForm(forms.Form):
    """The account page's "create token": a lifetime in days (the configured one unless
    changed), or never expiring when that box is ticked."""

    name = forms.CharField(max_length=100, required=False)
    expires_in_days = forms.IntegerField(
        min_value=1,
        max_value=MAX_TOKEN_LIFETIME_DAYS,
        required=False,
        initial=lambda: settings.OMTX_TOKEN_LIFETIME_DAYS,
    )
    never_expires = forms.BooleanField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        # The days field arrives filled in by default; ticking "never" is the explicit choice.
        if data.get("never_expires"):
            data["expires_in_days"] = None
        return data
