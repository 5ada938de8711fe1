import secrets
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from accounts.services import token_create
from batches.models import Batch
from batches.services.submission import Submission, batch_create
from batches.validation.files import read_ligand_file

DEMO = Path(__file__).resolve().parents[2] / "demo"


class Command(BaseCommand):
    help = "Create the demo account, print its API token, and submit the CDK2 demo batch."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="demo")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="where the hub is served")

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username=options["username"], defaults={"is_staff": True, "is_superuser": True}
        )
        password = None
        if created:
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.save()
        _, token = token_create(user=user, name="demo")
        batch = Batch.objects.filter(owner=user, name="CDK2 demo (ZINC, ligand-profile)").first()
        if batch is None:
            smi = (DEMO / "cdk2_zinc.smi").read_bytes()
            submission = Submission(
                name="CDK2 demo (ZINC, ligand-profile)",
                model="ligand-profile",
                protein_name="CDK2_HUMAN",
                protein_sequence=(DEMO / "cdk2_human.fasta").read_text(),
                ligands=list(read_ligand_file(smi, "cdk2_zinc.smi")),
            )
            batch, _ = batch_create(owner=user, submission=submission)
        hint = f"password: {password}" if password else "(password: manage.py changepassword demo)"
        self.stdout.write(f"user:     {user.get_username()}  {hint}")
        self.stdout.write(f"token:    {token}")
        self.stdout.write(f"batch:    {batch.pk} ({batch.n_total} jobs, {batch.status})")
        self.stdout.write(
            f"try:      curl -H 'Authorization: Bearer {token}' "
            f"{options['base_url'].rstrip('/')}/api/v3/batches/{batch.pk}/status"
        )
