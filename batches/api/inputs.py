"""Turning API requests (JSON, legacy JSON, multipart upload) into a Submission."""

import hashlib
import itertools
import json
import re
from typing import Any

from django.http import QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request

from batches.catalog import DEFAULT_MODEL, get_model
from batches.services.legacy_policy import legacy_policy
from batches.services.submission import (
    MAX_ATTEMPTS,
    MAX_IN_FLIGHT,
    MAX_TIMEOUT_SECONDS,
    MIN_TIMEOUT_SECONDS,
    ON_INVALID,
    Submission,
    request_fingerprint,
)
from batches.validation.files import FORMATS, detect_format, iter_ligand_records, sdf_records_exceed
from batches.validation.ligands import raw_from_json
from batches.webhooks.addresses import MAX_URL_LENGTH
from omtx_hub.errors import InvalidInput, TooLarge

# The predecessor's top-level model switches; they apply where the model has them.
LEGACY_OPTIONS = ("use_msa", "use_potentials")


class TextField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# What a form field holds for a boolean or an integer: JSON's spelling, as text.
FORM_BOOLEANS = {"true": True, "false": False}
FORM_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")


class FormSpelling(serializers.Field[Any, Any, Any, Any]):
    """In a form, a field holds its JSON spelling as text: `null` is null, and an empty
    value is no value (DRF reads it as null, or as absent, for a form)."""

    def get_value(self, dictionary: Any) -> Any:
        if self.context.get("form") and self.field_name in dictionary:
            return dictionary[self.field_name]
        return super().get_value(dictionary)

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        return super().validate_empty_values(None if self.context.get("form") and data == "null" else data)


class StrictBooleanField(FormSpelling, serializers.BooleanField):
    """true or false: JSON's, or their text in a form (not DRF's "yes", "on", "1" or "T")."""

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        if self.context.get("form") and data in FORM_BOOLEANS:
            return FORM_BOOLEANS[data]
        self.fail("invalid", input=data)


class StrictIntegerField(FormSpelling, serializers.IntegerField):
    """A JSON number; in a form, its digits (not " 3", "+3" or "3.0")."""

    def to_internal_value(self, data: Any) -> int:
        if self.context.get("form"):
            if not isinstance(data, str) or not FORM_INTEGER.fullmatch(data):
                self.fail("invalid")
        elif isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        value: int = super().to_internal_value(data)
        return value


class JSONObjectTextField(serializers.CharField):
    """A JSON object written as text: `options` in a form. Empty is no options."""

    default_error_messages = {"not_an_object": "Must be a JSON object, as text."}

    def to_internal_value(self, data: Any) -> Any:
        text = super().to_internal_value(data)
        try:
            value = json.loads(text or "{}", parse_constant=_no_constant)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            self.fail("not_an_object")
        return value


def _no_constant(name: str) -> None:
    # json.loads reads NaN and Infinity, which JSON (and the JSON body's parser) does not.
    raise ValueError(name)


class SubmissionFields(serializers.Serializer[Any]):
    """What a JSON submission and the upload form share."""

    name = TextField(max_length=200, required=False, allow_blank=True, default="")
    model = TextField(max_length=50, required=False, default=DEFAULT_MODEL)
    protein_name = TextField(max_length=200, required=False, allow_blank=True, default="")
    protein_sequence = TextField(allow_blank=True, trim_whitespace=False)
    priority = StrictIntegerField(required=False, default=0, min_value=-10, max_value=10)
    on_invalid = serializers.ChoiceField(choices=ON_INVALID, required=False, default="skip")
    standardize = StrictBooleanField(
        required=False,
        default=True,
        help_text="reduce each ligand to its standardized parent (largest organic fragment, neutralized)",
    )
    max_in_flight = StrictIntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=MAX_IN_FLIGHT,
        help_text="cap on this batch's jobs in flight",
    )
    max_attempts = StrictIntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=MAX_ATTEMPTS, help_text="attempts per job"
    )
    timeout_seconds = StrictIntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=MIN_TIMEOUT_SECONDS,
        max_value=MAX_TIMEOUT_SECONDS,
        help_text="per-attempt timeout in seconds, at most the model's (GET /models)",
    )
    format = serializers.ChoiceField(
        choices=sorted(FORMATS), required=False, allow_blank=True, help_text="file format when uploading"
    )
    webhook_url = TextField(
        max_length=MAX_URL_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        help_text="http(s) URL the batch's events are POSTed to, signed (docs/webhooks.md); needs a webhook secret",
    )


class LigandListField(serializers.ListField):
    """The ligands: a JSON array whose items validation judges one by one (a bad item is a
    per-item rejection, not a 400). The array is taken as parsed: ListField would run its
    JSONField child on each item, a json.dumps per ligand (a second per 100,000) to learn
    what the JSON parser already knows."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=serializers.JSONField(allow_null=True), **kwargs)

    def to_internal_value(self, data: Any) -> list[Any]:
        if not isinstance(data, list):
            self.fail("not_a_list", input_type=type(data).__name__)
        if not self.allow_empty and not data:
            self.fail("empty")
        return data


class SubmissionSerializer(SubmissionFields):
    """The JSON body."""

    ligands = LigandListField()
    options = serializers.DictField(required=False, default=dict)


@extend_schema_field(OpenApiTypes.BINARY)
class UploadField(serializers.FileField):
    """A file part (spectacular writes a bare FileField as a URI: the field as it reads back)."""


class SubmissionUploadSerializer(SubmissionFields):
    """The multipart form: the ligands as a file, `options` as JSON text, every other
    field as its JSON spelling in text (`true`, `3`)."""

    options = JSONObjectTextField(required=False, allow_blank=True, help_text="a JSON object, as text")
    ligands_file = UploadField(
        allow_empty_file=True, help_text="the ligands: .csv/.tsv (header detected), .smi, or .sdf; format overrides"
    )


FORM_FIELDS = [name for name in SubmissionUploadSerializer._declared_fields if name != "ligands_file"]


class LegacySubmissionSerializer(serializers.Serializer[Any]):
    """The predecessor's body for POST /api/v3/batches/submit."""

    job_name = TextField(max_length=200, required=False, allow_blank=True, default="")
    protein_name = TextField(max_length=200, required=False, allow_blank=True, default="")
    protein_sequence = TextField(allow_blank=True, trim_whitespace=False)
    ligands = LigandListField()
    model_name = TextField(required=False, default="boltz2")
    use_msa = StrictBooleanField(required=False)
    use_potentials = StrictBooleanField(required=False)
    configuration = serializers.DictField(required=False, default=dict)


CANONICAL_ONLY = set(SubmissionSerializer._declared_fields) - set(LegacySubmissionSerializer._declared_fields)


def _is_legacy(data: Any) -> bool:
    return hasattr(data, "get") and ("job_name" in data or "model_name" in data or "configuration" in data)


def _refuse_mixed(data: dict[str, Any]) -> None:
    """The predecessor's body on the canonical path, with a field of the canonical one: read
    as the predecessor's, that field would be dropped unchecked (`priority` is a key of its
    `configuration`), so the body is neither and is refused."""
    canonical = sorted(set(data) & CANONICAL_ONLY)
    if canonical:
        raise InvalidInput(
            f"A body with job_name, model_name or configuration is the predecessor's; "
            f"it has no {', '.join(canonical)}.",
            code="mixed_body",
            details={"fields": canonical},
        )


def submission_from_request(request: Request, *, legacy: bool = False) -> tuple[Submission, str]:
    """The submission and its fingerprint (for Idempotency-Key comparison). On the
    predecessor's path (`legacy`) the body is always the predecessor's: read as the
    canonical one, its `use_msa` and default model would be dropped without a word."""
    if legacy:
        return _from_legacy(request.data)
    if isinstance(request.data, QueryDict):  # a form: JSON bodies parse to dicts and lists
        return _from_upload(request)
    if _is_legacy(request.data):
        _refuse_mixed(request.data)
        return _from_legacy(request.data)
    serializer = SubmissionSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
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
        webhook_url=data.get("webhook_url", ""),
    )


def _from_legacy(raw: Any) -> tuple[Submission, str]:
    serializer = LegacySubmissionSerializer(data=raw)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    spec = get_model(data["model_name"])
    options = dict(data["configuration"])
    policy, warnings = legacy_policy(options, spec)
    for key in LEGACY_OPTIONS:
        if key in data and key in spec.params:
            options.setdefault(key, data[key])
    canonical = {
        "name": data["job_name"],
        "model": spec.name,
        "protein_name": data["protein_name"],
        "protein_sequence": data["protein_sequence"],
        "options": options,
        **policy,
    }
    submission = _build(canonical, raw_from_json(data["ligands"]))
    # Its clients name one molecule several times: one job per name, computed once.
    submission.allow_duplicates = True
    submission.warnings = warnings
    return submission, request_fingerprint(raw)


def _from_upload(request: Request) -> tuple[Submission, str]:
    serializer = SubmissionUploadSerializer(data=request.data, context={"form": True})
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    upload = data["ligands_file"]
    # The form as given (options parsed), for the Idempotency-Key comparison.
    fields: dict[str, Any] = {key: request.data[key] for key in FORM_FIELDS if key in request.data}
    if "options" in fields:
        fields["options"] = data["options"]
    filename = upload.name or "upload"
    limit = get_model(data["model"]).limits.max_ligands
    # One record past the limit proves the file too large; reading on would cost
    # time and memory to count records nobody will run.
    fmt = detect_format(filename, data.get("format") or None)
    over = fmt == "sdf" and sdf_records_exceed(upload, limit)
    upload.seek(0)
    ligands: list[Any] = [] if over else list(itertools.islice(iter_ligand_records(upload, filename, fmt), limit + 1))
    if over or len(ligands) > limit:
        raise TooLarge(
            f"{filename} holds more than {limit} ligands; a batch holds at most {limit}.",
            details={"max_ligands": limit},
        )
    upload.seek(0)  # hashed in chunks, from the start, whatever the parser left
    fingerprint = request_fingerprint({**fields, "file_sha256": hashlib.file_digest(upload, "sha256").hexdigest()})
    return _build(data, ligands), fingerprint
