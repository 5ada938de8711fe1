"""Protein sequence validation. FASTA is parsed; whitespace is always stripped."""

import hashlib
import re
from dataclasses import dataclass

from batches.registry import Limits
from omtx_hub.errors import InvalidInput

AMINO_ACIDS = frozenset("ACDEFGHIKLMNPQRSTVWY" + "X")
NUCLEOTIDES = frozenset("ACGTUN")
_WHITESPACE = re.compile(r"\s+")
# UniProt FASTA headers: "sp|P24941|CDK2_HUMAN Cyclin-dependent kinase 2 OS=…".
_UNIPROT = re.compile(r"^(?:sp|tr)\|([A-Z0-9]{6,10})\|(\w+)")


@dataclass(frozen=True)
class Protein:
    sequence: str
    header: str

    @property
    def label(self) -> str:
        """A name for a target submitted without one: the UniProt entry and
        accession, the FASTA header, or its length and a fingerprint."""
        uniprot = _UNIPROT.match(self.header)
        if uniprot:
            return f"{uniprot.group(2)} ({uniprot.group(1)})"
        if self.header:
            return self.header[:200]
        digest = hashlib.sha256(self.sequence.encode()).hexdigest()[:8]
        return f"unnamed {len(self.sequence)}-residue target {digest}"


def parse_protein(raw: object, limits: Limits) -> Protein:
    """Return the cleaned chain, or raise InvalidInput naming the problem."""

    def fail(message: str) -> InvalidInput:
        return InvalidInput(message, code="invalid_protein", details={"protein_sequence": message})

    if not isinstance(raw, str):
        raise fail("protein_sequence must be a string")
    header = ""
    text = raw.strip()
    if text.startswith(">"):
        lines = text.splitlines()
        header = lines[0][1:].strip()
        body = lines[1:]
        if any(line.startswith(">") for line in body):
            raise fail("FASTA text holds more than one record; submit one chain")
        text = "\n".join(body)
    # Whitespace (line breaks of FASTA, spaces of pasted text) is never a residue.
    sequence = _WHITESPACE.sub("", text).upper()
    if not sequence:
        raise fail("protein sequence is empty")
    bad = next((i for i, c in enumerate(sequence) if c not in AMINO_ACIDS), None)
    if set(sequence) <= NUCLEOTIDES and len(set(sequence)) >= 3 and ("U" in sequence or "T" in sequence):
        raise fail("sequence looks like a nucleic acid (only A, C, G, T/U), not a protein")
    if bad is not None:
        raise fail(
            f"invalid residue {sequence[bad]!r} at position {bad + 1}; allowed: the 20 standard amino acids and X"
        )
    if len(sequence) < limits.min_protein_length:
        raise fail(f"sequence has {len(sequence)} residues; the minimum is {limits.min_protein_length}")
    if len(sequence) > limits.max_protein_length:
        raise fail(f"sequence has {len(sequence)} residues; the maximum is {limits.max_protein_length}")
    return Protein(sequence=sequence, header=header)
