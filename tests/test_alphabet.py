import numpy as np
import pytest

from genoattn import alphabet


def test_every_iupac_letter_round_trips_in_both_cases():
    letters = "ACGTNRYSWKMBDHV"
    seq = letters + letters.lower()
    tokens, soft = alphabet.encode(seq)
    assert alphabet.first_invalid(tokens) is None
    assert soft.tolist() == [c.islower() for c in seq]
    assert alphabet.decode(tokens) == seq.upper()
    assert alphabet.decode(tokens, soft) == seq


@pytest.mark.parametrize("bad", ["U", "-", ".", "*", "X", "1", " "])
def test_invalid_letters_are_flagged_at_their_position(bad):
    tokens, _ = alphabet.encode("ACGT" + bad + "ACGT")
    assert alphabet.first_invalid(tokens) == 4


def test_composition_rows_are_base_fractions_and_pad_is_zero():
    comp = alphabet.COMPOSITION
    assert np.allclose(comp[1:].sum(1), 1.0)
    assert comp[alphabet.PAD].sum() == 0
    assert np.allclose(comp[alphabet.N], 0.25)
    r = alphabet.LETTERS.index("R")
    assert np.allclose(comp[r], [0.5, 0, 0.5, 0])  # R = A or G


def test_reverse_complement_is_an_involution_and_complements_ambiguity_codes():
    rng = np.random.default_rng()
    tokens = rng.integers(1, alphabet.N_CODES, size=1000).astype(np.uint8)
    assert np.array_equal(alphabet.reverse_complement(alphabet.reverse_complement(tokens)), tokens)
    tok, _ = alphabet.encode("AACGRYKMBDHVN")
    assert alphabet.decode(alphabet.reverse_complement(tok)) == "NBDHVKMRYCGTT"
    # complement of a code stands for the complements of its bases
    comp_bases = alphabet.COMPOSITION[alphabet.COMPLEMENT]
    assert np.allclose(comp_bases[1:], alphabet.COMPOSITION[1:, ::-1])
