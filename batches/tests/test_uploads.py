"""Bounded uploads: the size cap (OMTX_MAX_UPLOAD_MB) answers before the body is
read, the JSON limit admits the largest legitimate batch, and ligand files are
parsed as streams that stop one record past the model's ligand limit."""

import hashlib
import io
import itertools
import json
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.test import AsyncClient, Client
from rdkit import Chem
from rest_framework.test import APIClient

from accounts.services import token_create
from batches.api import inputs
from batches.catalog import LIGAND_PROFILE, MAX_MSA_CHARS, MODELS
from batches.validation import files
from batches.validation.files import RawLigand, iter_ligand_file
from conftest import CDK2

VALIDATE = "/api/v3/batches/validate"
BATCHES = "/api/v3/batches/"
BOUNDARY = "omtxUploadBoundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
MB = 1024 * 1024
# Django's multipart parser reads 64 KiB at a time; the streaming check may see a
# few chunks past the cap before it trips.
PARSER_SLACK = 4 * 64 * 1024


def _multipart_head(filename: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="protein_sequence"\r\n\r\n{CDK2}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="ligands_file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


class Body(io.RawIOBase):
    """A multipart request body of `size` bytes, made as it is read: the protein
    field, then a ligand file repeating `record`. Counts what the server reads;
    past `fail_after` bytes it fails the test, so a broken cap fails here instead
    of pulling half a gigabyte through the parser."""

    def __init__(self, size: int, record: bytes, *, fail_after: int) -> None:
        self.head = _multipart_head("big.sdf")
        self.tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        self.size = size
        self.record = record
        self.fail_after = fail_after
        self.position = 0

    def __len__(self) -> int:
        return self.size

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        end = self.size if size is None or size < 0 else min(self.size, self.position + size)
        if end > self.fail_after:
            raise AssertionError(f"the server read {end} bytes of the body (allowed: {self.fail_after})")
        data = b"".join(self._pieces(self.position, end))
        self.position = end
        return data

    def _pieces(self, start: int, end: int) -> Iterator[bytes]:
        filler_end = self.size - len(self.tail)
        while start < end:
            if start < len(self.head):
                piece = self.head[start : min(end, len(self.head))]
            elif start < filler_end:
                offset = (start - len(self.head)) % len(self.record)
                piece = self.record[offset : offset + min(end, filler_end) - start]
            else:
                piece = self.tail[start - filler_end : end - filler_end]
            yield piece
            start += len(piece)


class Endless:
    """A file that never ends: `head`, then `record` forever. Counts bytes read,
    and fails the test past 64 MB rather than let a reader that reads to the end
    run out the machine."""

    def __init__(self, record: bytes, head: bytes = b"") -> None:
        self.record = record
        self.pending = head
        self.position = 0

    def read(self, size: int = -1, /) -> bytes:
        assert size > 0 and self.position < 64 * MB, "a reader is reading an endless file to its end"
        while len(self.pending) < size:
            self.pending += self.record
        data, self.pending = self.pending[:size], self.pending[size:]
        self.position += len(data)
        return data


@pytest.fixture
def sdf_records(shared_data: Path) -> list[bytes]:
    data = (shared_data / "ligands" / "cmet_ligands.sdf").read_bytes()
    return [block + b"$$$$\n" for block in data.split(b"$$$$\n") if block.strip()]


@pytest.fixture
def limit_of_five() -> Iterator[int]:
    limits = LIGAND_PROFILE.limits
    original = limits.max_ligands
    object.__setattr__(limits, "max_ligands", 5)
    try:
        yield 5
    finally:
        object.__setattr__(limits, "max_ligands", original)


def _upload(client: APIClient, filename: str, content: bytes, url: str = VALIDATE, **extra: Any) -> Any:
    upload = io.BytesIO(content)
    upload.name = filename
    return client.post(url, {"ligands_file": upload, "protein_sequence": CDK2}, format="multipart", **extra)


def _post_raw(client: Client, url: str, body: Body, **environ: Any) -> Any:
    """POST `body` as the WSGI input, with the given environ (CONTENT_LENGTH or not).
    Django's client sets CONTENT_TYPE only with data, DRF's from content_type: give both."""
    environ = {"CONTENT_TYPE": MULTIPART, "wsgi.input": body, **environ}
    return client.generic("POST", url, content_type=MULTIPART, **environ)


def _asgi_post(user: User, url: str, body: Body, *, content_length: int) -> HttpResponse:
    """POST through Django's ASGI request, where the body is not cut at Content-Length."""
    _, raw = token_create(user=user, name="asgi")
    headers = [
        (b"content-type", MULTIPART.encode()),
        (b"content-length", str(content_length).encode()),
        (b"authorization", f"Bearer {raw}".encode()),
    ]
    response: HttpResponse = async_to_sync(AsyncClient().request)(
        method="POST", path=url, headers=headers, _body_file=body
    )
    return response


def _spy_records(monkeypatch: pytest.MonkeyPatch) -> list[RawLigand]:
    """The records _from_upload pulls from the reader."""
    pulled: list[RawLigand] = []
    real = inputs.iter_ligand_records

    def spy(*args: Any, **kwargs: Any) -> Iterator[RawLigand]:
        for ligand in real(*args, **kwargs):
            pulled.append(ligand)
            yield ligand

    monkeypatch.setattr(inputs, "iter_ligand_records", spy)
    return pulled


# -- the size cap ---------------------------------------------------------------------------


def test_content_length_over_the_cap_is_413_before_the_body_is_read(
    owner_client: APIClient, sdf_records: list[bytes]
) -> None:
    cap = django_settings.OMTX_MAX_UPLOAD_BYTES
    body = Body(cap + 1, sdf_records[0], fail_after=MB)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        response = _post_raw(owner_client, VALIDATE, body, CONTENT_LENGTH=str(len(body)))
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert response.status_code == 413, response.content[:300]
    error = response.json()["error"]
    assert error["code"] == "too_large"
    assert "512 MB limit (OMTX_MAX_UPLOAD_MB)" in error["message"]
    assert error["details"] == {"max_upload_bytes": cap}
    assert body.position == 0
    assert elapsed < 1.0
    assert peak < 16 * MB


def test_the_cap_is_a_setting_and_counts_the_whole_request(
    owner_client: APIClient, settings: Any, sdf_records: list[bytes]
) -> None:
    content = b"".join(sdf_records[:5])  # ≈ 20 KB
    settings.OMTX_MAX_UPLOAD_BYTES = len(content) + 8 * 1024  # room for the form fields
    assert _upload(owner_client, "five.sdf", content).status_code == 200
    settings.OMTX_MAX_UPLOAD_BYTES = len(content)  # the file fits, the request does not
    response = _upload(owner_client, "five.sdf", content)
    assert response.status_code == 413
    assert response.json()["error"]["details"] == {"max_upload_bytes": len(content)}


def test_a_body_longer_than_its_content_length_is_stopped_while_streaming(
    owner: User, settings: Any, sdf_records: list[bytes]
) -> None:
    # Under ASGI the body is not cut at Content-Length: a request may claim 1 KB
    # and send 8 MB. The handler counts what arrives.
    settings.OMTX_MAX_UPLOAD_BYTES = MB
    body = Body(8 * MB, sdf_records[0], fail_after=4 * MB)
    response = _asgi_post(owner, VALIDATE, body, content_length=1000)
    assert response.status_code == 413, response.content[:300]
    assert json.loads(response.content)["error"]["code"] == "too_large"
    assert MB < body.position <= MB + len(body.head) + PARSER_SLACK


def test_a_chunked_body_without_content_length_is_never_read(owner_client: APIClient, sdf_records: list[bytes]) -> None:
    # Django reads a WSGI body only up to its Content-Length, so a chunked
    # request without one cannot stream a file in at all: it arrives as an
    # empty form and is refused as one, at once.
    body = Body(django_settings.OMTX_MAX_UPLOAD_BYTES + 1, sdf_records[0], fail_after=0)
    started = time.perf_counter()
    response = _post_raw(owner_client, VALIDATE, body, HTTP_TRANSFER_ENCODING="chunked")
    assert time.perf_counter() - started < 1.0
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert body.position == 0


def test_an_anonymous_oversized_upload_is_401_unread(anon_client: APIClient, sdf_records: list[bytes]) -> None:
    body = Body(django_settings.OMTX_MAX_UPLOAD_BYTES + 1, sdf_records[0], fail_after=0)
    response = _post_raw(anon_client, VALIDATE, body, CONTENT_LENGTH=str(len(body)))
    assert response.status_code == 401
    assert body.position == 0


def test_a_plain_django_form_answers_an_oversized_body_with_400(db: None, sdf_records: list[bytes]) -> None:
    body = Body(django_settings.OMTX_MAX_UPLOAD_BYTES + 1, sdf_records[0], fail_after=0)
    response = _post_raw(Client(), "/account/login/", body, CONTENT_LENGTH=str(len(body)))
    assert response.status_code == 400  # not a 500
    assert body.position == 0


def test_the_default_cap_admits_a_full_batch_of_the_largest_sdf_records(sdf_records: list[bytes]) -> None:
    largest_batch = max(spec.limits.max_ligands for spec in MODELS.values())
    assert max(map(len, sdf_records)) * largest_batch < django_settings.OMTX_MAX_UPLOAD_BYTES


# -- the JSON body limit --------------------------------------------------------------------


def test_the_largest_json_batch_fits_the_body_limit(owner_client: APIClient, shared_data: Path) -> None:
    rows = [line.split() for line in (shared_data / "ligands" / "chembl2321810.smi").read_text().splitlines()]
    count = max(spec.limits.max_ligands for spec in MODELS.values())
    ligands = [{"name": f"{row[1]}-{i}", "smiles": row[0]} for i, row in zip(range(count), itertools.cycle(rows))]
    body = {
        "model": "no-such-model",
        "protein_sequence": CDK2,
        "ligands": ligands,
        "options": {"msa": "A" * MAX_MSA_CHARS},
    }
    raw = json.dumps(body)
    response = owner_client.post(VALIDATE, raw, content_type="application/json")
    # Read and parsed to the end: refused for its model, not for its size.
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_model"
    assert len(raw) * 2 < django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # with room to spare


def test_a_json_body_over_the_limit_is_413_in_the_envelope(owner_client: APIClient, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    response = owner_client.post(VALIDATE, {"protein_sequence": CDK2, "ligands": ["CCO"] * 20_000}, format="json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_a_form_field_over_the_limit_is_413_in_the_envelope(owner_client: APIClient, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024
    upload = io.BytesIO(b"CCO ethanol\n")
    upload.name = "one.smi"
    form = {"ligands_file": upload, "protein_sequence": CDK2, "options": json.dumps({"msa": "A" * 8192})}
    response = owner_client.post(VALIDATE, form, format="multipart")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


# -- parsing stops at the ligand limit ------------------------------------------------------


def test_an_sdf_over_the_limit_is_refused_before_any_record_is_parsed(
    owner_client: APIClient, limit_of_five: int, sdf_records: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    pulled = _spy_records(monkeypatch)
    response = _upload(owner_client, "many.sdf", b"".join(sdf_records))  # 24 records
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "too_large"
    assert error["message"] == "many.sdf holds more than 5 ligands; a batch holds at most 5."
    assert error["details"] == {"max_ligands": 5}
    assert pulled == []  # counted by separators: parsing 3D records costs ~1 ms each


@pytest.mark.parametrize("chunk", [3, 4, 5, 7, 64, 65536])
def test_sdf_records_are_counted_across_chunk_boundaries(
    sdf_records: list[bytes], monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(files, "CHUNK_BYTES", chunk)
    content = b"".join(sdf_records[:6])
    assert files.sdf_records_exceed(io.BytesIO(content), 5) is True
    assert files.sdf_records_exceed(io.BytesIO(content), 6) is False


def test_an_sdf_whose_last_record_has_no_separator_is_still_held_to_the_limit(
    owner_client: APIClient, limit_of_five: int, sdf_records: list[bytes]
) -> None:
    # Six records, the last without its $$$$: the count says five, the parser finds six.
    content = b"".join(sdf_records[:6]).rstrip().removesuffix(b"$$$$")
    response = _upload(owner_client, "six.sdf", content)
    assert response.status_code == 413


def test_an_sdf_at_the_limit_is_accepted(
    owner_client: APIClient, limit_of_five: int, sdf_records: list[bytes], settings: Any
) -> None:
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # RDKit reads it from a temporary file
    response = _upload(owner_client, "five.sdf", b"".join(sdf_records[:limit_of_five]))
    assert response.status_code == 200, response.content[:300]
    assert response.json()["submitted"] == limit_of_five


def test_a_smiles_file_over_the_limit_is_not_read_to_its_end(
    owner_client: APIClient, limit_of_five: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past the first rows (sniffed ahead) comes a byte that is not UTF-8: a
    # reader that went on would answer 400 invalid_file.
    monkeypatch.setattr(files, "CHUNK_BYTES", 64)
    content = b"".join(b"C%dO name%d\n" % (i, i) for i in range(2 * files.SNIFF_ROWS)) + b"\xff\n"
    response = _upload(owner_client, "many.smi", content)
    assert response.status_code == 413
    assert response.json()["error"]["message"] == "many.smi holds more than 5 ligands; a batch holds at most 5."


@pytest.mark.parametrize(
    "filename,head,record",
    [
        ("endless.smi", b"smiles name\n", b"CC(=O)Oc1ccccc1C(=O)O aspirin\n"),
        ("endless.csv", b"name,smiles\n", b"aspirin,CC(=O)Oc1ccccc1C(=O)O\n"),
        ("endless.sdf", b"", b""),  # the cMet records, below
    ],
)
def test_readers_pull_only_what_is_consumed(
    filename: str, head: bytes, record: bytes, sdf_records: list[bytes]
) -> None:
    stream = Endless(record or b"".join(sdf_records), head)
    wanted = 2_000
    tracemalloc.start()
    try:
        ligands = list(itertools.islice(iter_ligand_file(stream, filename), wanted))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(ligands) == wanted and all(lig.smiles for lig in ligands)
    # 2,000 SDF records are 8 MB of input; the readers hold a record or a chunk at a time.
    assert peak < 4 * MB
    per_record = len(record) if record else max(map(len, sdf_records))
    assert stream.position <= len(head) + wanted * per_record + 2 * files.CHUNK_BYTES


# -- the readers still read the real files as before ----------------------------------------

# Digests of [name, smiles, error] per record from the readers before they streamed
# (commit 3b4996d). SMILES and CSV records carry the file's own text, so these do not
# depend on the RDKit version; SDF records are compared with RDKit's own supplier.
BEFORE = [
    ("cdk2_zinc.smi", 47, "f8a6864231bd6c65677af90f8dcf391326b9fa944fee4ec4065fa200f23de872"),
    ("chembl2321810.smi", 1017, "59edc79745913b391cad5e5bd620b948165c4d7fbfaa1dc87f162ee5f7bdb2ad"),
    ("zinc100.tsv", 100, "c625d329d550006b7f96745f1e5cda0ee92c0af3fd01927a1fa75e71ae29ee22"),
]


def _read_streaming(path: Path) -> list[list[str | None]]:
    with path.open("rb") as handle:
        return [[lig.name, lig.smiles, lig.error] for lig in iter_ligand_file(handle, path.name)]


@pytest.mark.parametrize("chunk", [64 * 1024, 7])
@pytest.mark.parametrize("filename,count,digest", BEFORE)
def test_text_files_read_as_before(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, filename: str, count: int, digest: str
) -> None:
    monkeypatch.setattr(files, "CHUNK_BYTES", chunk)  # 7 bytes: records and characters cut across chunks
    records = _read_streaming(shared_data / "ligands" / filename)
    assert len(records) == count
    assert hashlib.sha256(json.dumps(records).encode()).hexdigest() == digest


def test_a_table_without_smiles_is_refused_as_a_whole(shared_data: Path, owner_client: APIClient) -> None:
    # An activity table (ChEMBL id, pActivity): before, 1,018 "invalid SMILES", its header among them.
    content = (shared_data / "ligands" / "chembl2321810_activity.csv").read_bytes()
    response = _upload(owner_client, "activity.csv", content)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "no_smiles_column"
    assert "Name, Act" in error["message"]


def test_a_header_with_unknown_names_is_not_a_ligand() -> None:
    content = b"Ligand SMILES,Compound,pIC50\nCCO,ethanol,5.1\nc1ccccc1O,phenol,6.2\n"
    records = list(iter_ligand_file(io.BytesIO(content), "table.csv"))
    assert [(r.name, r.smiles) for r in records] == [("ethanol", "CCO"), ("phenol", "c1ccccc1O")]


def test_sdf_reads_as_rdkit_reads_it_whole(shared_data: Path) -> None:
    path = shared_data / "ligands" / "cmet_ligands.sdf"
    whole = [
        [mol.GetProp("_Name").strip() or None, Chem.MolToSmiles(mol), None] for mol in Chem.SDMolSupplier(str(path))
    ]
    assert len(whole) == 24
    assert _read_streaming(path) == whole


def test_an_upload_on_disk_is_fingerprinted_by_all_its_content(owner_client: APIClient, settings: Any) -> None:
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # these uploads go to temporary files
    padding = b"# a comment longer than a read chunk\n" * 4096  # ≈ 150 KB

    def post(tail: bytes) -> int:
        response = _upload(
            owner_client, "l.smi", padding + b"CCO ethanol\n" + tail, BATCHES, HTTP_IDEMPOTENCY_KEY="disk"
        )
        return int(response.status_code)

    assert post(b"") == 201
    assert post(b"") == 200
    # The same ligands; only the end of the file differs.
    assert post(b"# changed\n") == 409


def test_a_bad_smiles_in_the_first_row_of_a_headerless_file_is_a_record() -> None:
    records = list(iter_ligand_file(io.BytesIO(b"C1CC,bad_one\nCCO,ethanol\nCCN,ethylamine\n"), "x.csv"))
    assert [(r.name, r.smiles) for r in records] == [("bad_one", "C1CC"), ("ethanol", "CCO"), ("ethylamine", "CCN")]
