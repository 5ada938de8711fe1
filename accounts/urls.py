from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views
from ratelimit.auth_limits import login_limited

urlpatterns = [
    path("login/", login_limited(auth_views.LoginView.as_view()), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.account, name="account"),
    path("tokens/", views.token_new, name="token-new"),
    path("tokens/<int:token_id>/revoke/", views.token_delete, name="token-revoke"),
]
