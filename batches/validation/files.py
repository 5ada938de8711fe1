"""Ligand files: CSV/TSV (header detection), SMILES files, SDF.

Each reader is a generator over the uploaded file: it yields one RawLigand per
input record, in order, so the validation report can name every record,
including the unreadable ones. They read the file a chunk at a time and hold
only the record in hand (plus the first rows, for sniffing), so a caller that
stops early (the ligand limit) stops the reading too, and memory stays flat
whatever the file's size.
"""

import codecs
import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from rdkit import Chem

from batches.validation.rdkit_log import rdkit_messages
from omtx_hub.errors import InvalidInput

SMILES_COLUMNS = ("smiles", "smi", "canonical_smiles", "isomeric_smiles", "ligand_smiles", "structure")
NAME_COLUMNS = (
    "name",
    "ligand_name",
    "id",
    "ligand",
    "compound",
    "compound_id",
    "title",
    "molecule",
    "chembl_id",
    "zinc_id",
)
FORMATS = {
    "csv": "csv",
    "tsv": "csv",
    "smi": "smi",
    "smiles": "smi",
    "txt": "smi",
    "sdf": "sdf",
    "sd": "sdf",
    "mol": "sdf",
}
CHUNK_BYTES = 64 * 1024
# What the CSV dialect sniffer and the SMILES-column sniffer look at.
SNIFF_CHARS = 8192
SNIFF_ROWS = 25
# A SMILES is at most a few thousand characters (Limits.max_smiles_length); a
# line this long is not a ligand record, and holding it would undo the
# constant memory of reading line by line.
MAX_LINE_CHARS = 1024 * 1024


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


@dataclass(frozen=True)
class RawLigand:
    name: str | None
    smiles: str | None
    # Set when the record itself could not be read (an SDF block RDKit refused).
    error: str | None = None
    # An SDF record not parsed yet (its bytes as latin-1 text): parsing a 3D record costs
    # about a millisecond, so it happens at validation (read_record), in the background for
    # a large batch, not in the request that uploads it.
    molblock: str | None = None


def detect_format(filename: str, explicit: str | None) -> str:
    suffix = filename.rsplit(".", 1)[-1] if "." in filename else ""
    key = (explicit or suffix).lower()
    if key not in FORMATS:
        raise InvalidInput(
            f"Cannot tell the format of {filename!r}; name it .csv, .tsv, .smi or .sdf, or pass format.",
            code="unknown_format",
            details={"formats": sorted(FORMATS)},
        )
    return FORMATS[key]


def read_ligand_file(data: bytes, filename: str, explicit_format: str | None = None) -> list[RawLigand]:
    """The whole file at once, for callers that already hold it in memory."""
    return list(iter_ligand_file(io.BytesIO(data), filename, explicit_format))


def iter_ligand_file(stream: Readable, filename: str, explicit_format: str | None = None) -> Iterator[RawLigand]:
    """The file's records, read as they are consumed, SDF records parsed."""
    records = iter_ligand_records(stream, filename, explicit_format)
    return (read_record(raw, number) for number, raw in enumerate(records, 1))


def iter_ligand_records(stream: Readable, filename: str, explicit_format: str | None = None) -> Iterator[RawLigand]:
    """The file's records, read as they are consumed; SDF records still unparsed. The format
    is checked now; undecodable or empty text raises InvalidInput when iteration reaches it."""
    fmt = detect_format(filename, explicit_format)
    if fmt == "sdf":
        return _sdf_records(stream)
    lines = _lines(_decode(_chunks(stream), filename), filename)
    rows = _read_csv(lines) if fmt == "csv" else _read_smi(lines)
    return _non_empty(rows, filename)


def sdf_records_exceed(stream: Readable, limit: int) -> bool:
    """Whether an SDF holds more than `limit` records, by counting its `$$$$`
    lines: a scan at disk speed, where parsing 3D records costs ~1 ms each
    (100,001 of them would outlast the web worker's timeout before the 413)."""
    records, tail = 0, b"\n"
    for chunk in _chunks(stream):
        # The previous chunk's last bytes, so a separator split across two chunks counts once.
        window = tail + chunk
        records += window.count(b"\n$$$$")
        if records > limit:
            return True
        tail = window[-4:]
    return False


def _chunks(stream: Readable) -> Iterator[bytes]:
    return iter(lambda: stream.read(CHUNK_BYTES), b"")


def _decode(chunks: Iterable[bytes], filename: str) -> Iterator[str]:
    """UTF-8 text, a leading byte-order mark dropped, as the chunks arrive."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    fed = 0
    at_start = True
    for chunk in itertools.chain(chunks, [b""]):
        # Bytes of an incomplete character carried over from the last chunk: the
        # error's offset counts from them, and the message names the file's byte.
        carried = len(decoder.getstate()[0])
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            byte = fed - carried + exc.start + 1
            raise InvalidInput(f"{filename} is not UTF-8 text (byte {byte}).", code="invalid_file") from exc
        fed += len(chunk)
        if at_start and text:
            text = text.removeprefix("\ufeff")
            at_start = False
        if text:
            yield text


def _lines(texts: Iterable[str], filename: str) -> Iterator[str]:
    """Lines ending at "\\n", with their ending (what csv.reader expects)."""
    pending = ""
    for text in texts:
        *complete, pending = (pending + text).split("\n")
        for line in complete:
            yield line + "\n"
        if len(pending) > MAX_LINE_CHARS:
            raise InvalidInput(
                f"{filename} has a line longer than {MAX_LINE_CHARS} characters; it is not a ligand file.",
                code="invalid_file",
            )
    if pending:
        yield pending


def _non_empty(ligands: Iterator[RawLigand], filename: str) -> Iterator[RawLigand]:
    first = next(ligands, None)
    if first is None:
        raise InvalidInput(f"{filename} holds no ligands.", code="empty_file")
    yield first
    yield from ligands


def _parses(token: str) -> bool:
    with rdkit_messages():
        return Chem.MolFromSmiles(token, sanitize=False) is not None


def _smiles_column(rows: list[list[str]]) -> int:
    """Which column holds the SMILES, judged by what RDKit can parse in a sample."""
    sample = rows[:SNIFF_ROWS]
    width = max((len(r) for r in sample), default=1)
    scores = [sum(1 for r in sample if i < len(r) and r[i] and _parses(r[i])) for i in range(width)]
    return max(range(width), key=lambda i: (scores[i], -i))


def _to_ligands(rows: Iterable[list[str]], smiles_col: int, name_col: int | None) -> Iterator[RawLigand]:
    for row in rows:
        smiles = row[smiles_col] if smiles_col < len(row) else ""
        name = row[name_col] if name_col is not None and name_col < len(row) else None
        yield RawLigand(name=name, smiles=smiles)


def _head(lines: Iterator[str], chars: int) -> list[str]:
    """The first lines, up to `chars` characters or a little past them."""
    head: list[str] = []
    size = 0
    while size < chars:
        line = next(lines, None)
        if line is None:
            break
        head.append(line)
        size += len(line)
    return head


def _looks_like_a_header(cell: str) -> bool:
    """Words ("Ligand SMILES", "Structure"), not a molecule that failed to parse:
    no digit, bracket, bond or charge sign. A bad SMILES in the first row of a
    headerless file is a record, and is reported as one."""
    return not _parses(cell) and not re.search(r"[0-9\[\]()=#@+\-/\\%.$]", cell)


def _read_csv(lines: Iterator[str]) -> Iterator[RawLigand]:
    head = _head(lines, SNIFF_CHARS)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff("".join(head)[:SNIFF_CHARS], delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(itertools.chain(head, lines), dialect)
    rows = _csv_rows(row for row in reader if any(cell.strip() for cell in row))
    first = next(rows, None)
    if first is None:
        return
    header = [cell.strip().lower() for cell in first]
    smiles_col = next((header.index(c) for c in SMILES_COLUMNS if c in header), None)
    if smiles_col is not None:
        name_col = next((header.index(c) for c in NAME_COLUMNS if c in header), None)
        yield from _to_ligands(rows, smiles_col, name_col)
        return
    sample = [first, *itertools.islice(rows, SNIFF_ROWS - 1)]
    smiles_col = _smiles_column(sample)
    if not any(smiles_col < len(row) and _parses(row[smiles_col]) for row in sample):
        raise InvalidInput(
            f"No column holds SMILES: none of the first {len(sample)} rows parses in any column "
            f"(first row: {', '.join(first)[:200]}). Name the SMILES column one of {', '.join(SMILES_COLUMNS)}.",
            code="no_smiles_column",
        )
    if len(sample) > 1 and _looks_like_a_header(first[smiles_col] if smiles_col < len(first) else ""):
        # A header with names we do not know ("Structure", "Ligand SMILES"): the
        # column parses below it, not in it.
        names = [cell.strip().lower() for cell in first]
        name_col = next((names.index(c) for c in NAME_COLUMNS if c in names), None)
        sample = sample[1:]
    else:
        name_col = None
    if name_col is None:
        name_col = next((i for i in range(len(first)) if i != smiles_col), None)
    yield from _to_ligands(itertools.chain(sample, rows), smiles_col, name_col)


def _csv_rows(rows: Iterator[list[str]]) -> Iterator[list[str]]:
    # The csv module refuses a field over its size limit (128 KiB) with csv.Error.
    try:
        yield from rows
    except csv.Error as exc:
        raise InvalidInput(f"The CSV file cannot be read: {exc}.", code="invalid_file") from exc


def _read_smi(lines: Iterator[str]) -> Iterator[RawLigand]:
    rows: Iterator[list[str]] = (
        stripped.split(None, 1)
        for line in lines
        for piece in line.splitlines()
        if (stripped := piece.strip()) and not stripped.startswith("#")
    )
    first = next(rows, None)
    if first is None:
        return
    if first[0].lower() not in SMILES_COLUMNS + NAME_COLUMNS:
        rows = itertools.chain([first], rows)
    sample = list(itertools.islice(rows, SNIFF_ROWS))
    if not sample:
        return
    # SMILES files come as "SMILES name" and as "name<TAB>SMILES" (ZINC exports).
    smiles_col = _smiles_column(sample)
    name_col = 1 - smiles_col if smiles_col in (0, 1) else None
    stripped_rows = ([c.strip() for c in r] for r in itertools.chain(sample, rows))
    yield from _to_ligands(stripped_rows, smiles_col, name_col)


def _sdf_records(stream: Readable) -> Iterator[RawLigand]:
    """Each record's text up to its `$$$$` line, as RDKit's supplier splits them; a last
    record without the separator is a record too."""
    record: list[bytes] = []
    for line in _byte_lines(stream):
        record.append(line)
        if line.startswith(b"$$$$"):  # RDKit ends a record at any line that starts so
            yield RawLigand(name=None, smiles=None, molblock=b"".join(record).decode("latin-1"))
            record = []
    if any(line.strip() for line in record):
        yield RawLigand(name=None, smiles=None, molblock=b"".join(record).decode("latin-1"))


def _byte_lines(stream: Readable) -> Iterator[bytes]:
    pending = b""
    for chunk in _chunks(stream):
        *complete, pending = (pending + chunk).split(b"\n")
        yield from (line + b"\n" for line in complete)
        if len(pending) > MAX_LINE_CHARS:
            raise InvalidInput(f"An SDF line is longer than {MAX_LINE_CHARS} bytes.", code="invalid_file")
    if pending:
        yield pending


def read_record(raw: RawLigand, number: int) -> RawLigand:
    """The ligand of a record: an SDF record (the file's `number`th) parsed by RDKit, as
    its ForwardSDMolSupplier would; any other record as it is."""
    if raw.molblock is None:
        return raw
    supplier = Chem.ForwardSDMolSupplier(io.BytesIO(raw.molblock.encode("latin-1")), sanitize=True, removeHs=True)
    unreadable = RawLigand(name=None, smiles=None, error=f"SDF record {number} could not be read by RDKit")
    with rdkit_messages():
        mol = next(supplier, None)
        # One record, one molecule: a second would be a ligand the split lost.
        if mol is None or next(supplier, None) is not None:
            return unreadable
    try:
        name = mol.GetProp("_Name").strip() if mol.HasProp("_Name") else None
    except UnicodeDecodeError:  # a title line that is not UTF-8: a ligand without a name
        name = None
    return RawLigand(name=name or None, smiles=Chem.MolToSmiles(mol))
