"""Turning API requests (JSON, legacy JSON, multipart upload) into a Submission."""

import hashlib
import itertools
import json
from typing import Any

from rest_framework import serializers
from rest_framework.request import Request

from batches.catalog import DEFAULT_MODEL, get_model
from batches.services.submission import ON_INVALID, Submission, request_fingerprint
from batches.validation.files import FORMATS, detect_format, iter_ligand_file, sdf_records_exceed
from batches.validation.ligands import raw_from_json
from omtx_hub.errors import InvalidInput, TooLarge

# The predecessor's top-level model switches; they apply where the model has them.
LEGACY_OPTIONS = ("use_msa", "use_potentials")


class TextField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class SubmissionSerializer(serializers.Serializer[Any]):
    name = TextField(max_length=200, required=False, allow_blank=True, default="")
    model = TextField(max_length=50, required=False, default=DEFAULT_MODEL)
    protein_name = TextField(max_length=200, required=False, allow_blank=True, default="")
    protein_sequence = TextField(allow_blank=True, trim_whitespace=False)
    ligands = serializers.ListField(child=serializers.JSONField(allow_null=True), required=False)
    options = serializers.DictField(required=False, default=dict)
    priority = serializers.IntegerField(required=False, default=0, min_value=-10, max_value=10)
    on_invalid = serializers.ChoiceField(choices=ON_INVALID, required=False, default="skip")
    standardize = serializers.BooleanField(
        required=False,
        default=True,
        help_text="reduce each ligand to its standardized parent (largest organic fragment, neutralized)",
    )
    max_in_flight = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, help_text="cap on this batch's jobs in flight"
    )
    max_attempts = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=10, help_text="attempts per job"
    )
    timeout_seconds = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="per-attempt timeout, at most the model's (GET /models)",
    )
    format = serializers.ChoiceField(
        choices=sorted(FORMATS), required=False, allow_blank=True, help_text="file format when uploading"
    )


class LegacySubmissionSerializer(serializers.Serializer[Any]):
    """The predecessor's body for POST /api/v3/batches/submit."""

    job_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    protein_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    protein_sequence = serializers.CharField(allow_blank=True, trim_whitespace=False)
    ligands = serializers.ListField(child=serializers.JSONField())
    model_name = serializers.CharField(required=False, default="boltz2")
    use_msa = serializers.BooleanField(required=False)
    use_potentials = serializers.BooleanField(required=False)
    configuration = serializers.DictField(required=False, default=dict)


def _is_legacy(data: Any) -> bool:
    return hasattr(data, "get") and ("job_name" in data or "model_name" in data or "configuration" in data)


def submission_from_request(request: Request) -> tuple[Submission, str]:
    """The submission and its fingerprint (for Idempotency-Key comparison)."""
    files = getattr(request, "FILES", {})
    upload = files.get("ligands_file") or files.get("file")
    if upload is not None:
        return _from_upload(request, upload)
    if _is_legacy(request.data):
        return _from_legacy(request.data)
    serializer = SubmissionSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    if "ligands" not in data:
        raise InvalidInput("Give ligands as a JSON list or upload a ligands_file.", code="no_ligands")
    return _build(data, raw_from_json(data["ligands"])), request_fingerprint(request.data)


def _build(data: dict[str, Any], ligands: list[Any]) -> Submission:
    return Submission(
        name=data.get("name", ""),
        model=data.get("model", DEFAULT_MODEL),
        protein_name=data.get("protein_name", ""),
        protein_sequence=data["protein_sequence"],
        ligands=ligands,
        options=data.get("options", {}),
        priority=data.get("priority", 0),
        on_invalid=data.get("on_invalid", "skip"),
        standardize=data.get("standardize", True),
        max_in_flight=data.get("max_in_flight"),
        max_attempts=data.get("max_attempts"),
        timeout_seconds=data.get("timeout_seconds"),
    )


def _from_legacy(raw: Any) -> tuple[Submission, str]:
    serializer = LegacySubmissionSerializer(data=raw)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    spec = get_model(data["model_name"])
    options = dict(data["configuration"])
    for key in LEGACY_OPTIONS:
        if key in data and key in spec.params:
            options.setdefault(key, data[key])
    canonical = {
        "name": data["job_name"],
        "model": spec.name,
        "protein_name": data["protein_name"],
        "protein_sequence": data["protein_sequence"],
        "options": options,
    }
    return _build(canonical, raw_from_json(data["ligands"])), request_fingerprint(raw)


def _from_upload(request: Request, upload: Any) -> tuple[Submission, str]:
    names = (
        "name",
        "model",
        "protein_name",
        "protein_sequence",
        "options",
        "priority",
        "on_invalid",
        "format",
        "standardize",
        "max_in_flight",
        "max_attempts",
        "timeout_seconds",
    )
    fields: dict[str, Any] = {key: request.data.get(key) for key in names if key in request.data}
    if isinstance(fields.get("options"), str):
        try:
            fields["options"] = json.loads(fields["options"] or "{}")
        except json.JSONDecodeError as exc:
            raise InvalidInput("options must be a JSON object.", code="invalid_options") from exc
    serializer = SubmissionSerializer(data=fields)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    filename = upload.name or "upload"
    limit = get_model(data["model"]).limits.max_ligands
    # One record past the limit proves the file too large; reading on would cost
    # time and memory to count records nobody will run.
    fmt = detect_format(filename, data.get("format") or None)
    over = fmt == "sdf" and sdf_records_exceed(upload, limit)
    upload.seek(0)
    ligands: list[Any] = [] if over else list(itertools.islice(iter_ligand_file(upload, filename, fmt), limit + 1))
    if over or len(ligands) > limit:
        raise TooLarge(
            f"{filename} holds more than {limit} ligands; a batch holds at most {limit}.",
            details={"max_ligands": limit},
        )
    upload.seek(0)  # hashed in chunks, from the start, whatever the parser left
    fingerprint = request_fingerprint({**fields, "file_sha256": hashlib.file_digest(upload, "sha256").hexdigest()})
    return _build(data, ligands), fingerprint
