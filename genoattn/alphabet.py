"""The one nucleotide alphabet of genoattn.

Input contract
--------------
* Sequence text: ASCII bytes from a FASTA record. Accepted letters, case-insensitive:
  ``A C G T``, ``N`` and the IUPAC ambiguity codes ``R Y S W K M B D H V``.
  Anything else (``U``, ``-``, ``.``, ``*``, digits, ...) is invalid and reported by the caller
  with contig and 1-based position.
* Tokens: ``uint8`` codes, shape ``[length]``. ``PAD`` (0) never comes from a FASTA: it fills
  the tail of the last window and is masked out of attention and pooling.
* Soft-masking: lowercase letters; kept apart as a boolean array (``True`` = lowercase),
  the token itself is case-folded.

An ambiguity code embeds as the mean of the bases it stands for: ``COMPOSITION[code]`` is the
row of base fractions (A, C, G, T) that the embedding layers multiply with their base table.
"""

from __future__ import annotations

import numpy as np

PAD = 0
#: code -> letter; index = code. Order is part of the on-disk format: never reorder.
LETTERS = "-ACGTNRYSWKMBDHV"
#: letter -> the bases it stands for (IUPAC)
IUPAC_BASES = {
    "A": "A", "C": "C", "G": "G", "T": "T",
    "N": "ACGT",
    "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT", "M": "AC",
    "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG",
}
A, C, G, T, N = (LETTERS.index(b) for b in "ACGTN")
N_CODES = len(LETTERS)
INVALID = 255

_COMPLEMENT_LETTER = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N", "R": "Y", "Y": "R",
                      "S": "S", "W": "W", "K": "M", "M": "K", "B": "V", "V": "B", "D": "H", "H": "D"}


def _build_tables():
    encode = np.full(256, INVALID, dtype=np.uint8)
    for code, letter in enumerate(LETTERS):
        if code == PAD:
            continue
        encode[ord(letter)] = code
        encode[ord(letter.lower())] = code
    complement = np.zeros(N_CODES, dtype=np.uint8)
    for code, letter in enumerate(LETTERS):
        complement[code] = PAD if code == PAD else LETTERS.index(_COMPLEMENT_LETTER[letter])
    composition = np.zeros((N_CODES, 4), dtype=np.float32)
    for code, letter in enumerate(LETTERS):
        if code == PAD:
            continue
        bases = IUPAC_BASES[letter]
        for b in bases:
            composition[code, "ACGT".index(b)] = 1.0 / len(bases)
    decode = np.frombuffer(LETTERS.encode(), dtype=np.uint8).copy()
    decode[PAD] = ord("-")
    return encode, complement, composition, decode


ENCODE, COMPLEMENT, COMPOSITION, DECODE = _build_tables()
_IS_LOWER = np.zeros(256, dtype=bool)
_IS_LOWER[ord("a"):ord("z") + 1] = True


def encode(seq: bytes | str) -> tuple[np.ndarray, np.ndarray]:
    """Encode sequence text into ``(tokens uint8 [L], softmask bool [L])``.

    Invalid letters get code ``INVALID`` (255); use :func:`first_invalid` to report them.
    """
    raw = np.frombuffer(seq.encode("ascii") if isinstance(seq, str) else seq, dtype=np.uint8)
    return ENCODE[raw], _IS_LOWER[raw]


def first_invalid(tokens: np.ndarray) -> int | None:
    """0-based index of the first invalid code, or None."""
    bad = np.flatnonzero(tokens == INVALID)
    return int(bad[0]) if bad.size else None


def decode(tokens: np.ndarray, softmask: np.ndarray | None = None) -> str:
    """Tokens back to text (upper case, or lower case where ``softmask``)."""
    raw = DECODE[np.asarray(tokens, dtype=np.uint8)]
    if softmask is not None:
        raw = np.where(softmask, raw + (ord("a") - ord("A")) * (raw != ord("-")), raw).astype(np.uint8)
    return raw.tobytes().decode("ascii")


def reverse_complement(tokens: np.ndarray) -> np.ndarray:
    """Reverse complement of a token array (PAD stays PAD)."""
    return COMPLEMENT[np.asarray(tokens)[::-1]]


def is_base_or_ambiguous(tokens: np.ndarray) -> np.ndarray:
    """True for real sequence (not PAD)."""
    return np.asarray(tokens) != PAD


def is_n(tokens: np.ndarray) -> np.ndarray:
    return np.asarray(tokens) == N
