from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import token_create
from omtx_hub.errors import InvalidInput


class Command(BaseCommand):
    help = "Create an API token for a user and print it (shown only once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="cli")
        lifetime = parser.add_mutually_exclusive_group()
        lifetime.add_argument(
            "--expires-in-days", type=int, default=None, help="default: OMTX_TOKEN_LIFETIME_DAYS (settings)"
        )
        lifetime.add_argument("--never-expires", action="store_true", help="a token that does not expire")
        parser.add_argument("--create-user", action="store_true", help="create the user if missing")

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        username = options["username"]
        user = User.objects.filter(username=username).first()
        if user is None:
            if not options["create_user"]:
                raise CommandError(f"No user {username!r} (pass --create-user to create one).")
            user = User.objects.create_user(username=username)
        try:
            _, raw = token_create(
                user=user,
                name=options["name"],
                expires_in_days=options["expires_in_days"],
                never_expires=options["never_expires"],
            )
        except InvalidInput as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(raw)
