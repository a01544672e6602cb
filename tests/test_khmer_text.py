"""Khmer names: canonical order, look-alike folding, romanisation, phonetic keys and cross-script search."""

import csv
import unicodedata
from pathlib import Path

import pytest

from app.text.khmer import khmer_key, matches, normalise, phonetic_key, romanise, search_keys

ZWSP, ZWNJ = "\u200b", "\u200c"


# ---- normalisation: what was typed, in one canonical order ----------------------------------------------

@pytest.mark.parametrize("typed, canonical", [
    # vowel typed before the subscript: ស ី ្រ -> ស ្រ ី
    ("\u179f\u17b8\u17d2\u179a", "ស្រី"),
    # shifter typed after the vowel: ម ៅ ៉ -> ម ៉ ៅ
    ("\u1798\u17c5\u17c9", "ម៉ៅ"),
    # two subscripts, ro typed first: ស ្រ ្ត ី -> ស ្ត ្រ ី
    ("\u179f\u17d2\u179a\u17d2\u178f\u17b8", "\u179f\u17d2\u178f\u17d2\u179a\u17b8"),
    # nikahit typed before the vowel: ណ ំ ា -> ណ ា ំ
    ("\u178e\u17c6\u17b6", "ណាំ"),
    # -u typed for the triisap under an upper vowel: ស ុ ី -> ស ៊ ី
    ("\u179f\u17bb\u17b8", "ស៊ី"),
    # -u typed for the muusikatoan: ម ុ ី -> ម ៉ ី (ម takes the muusikatoan)
    ("\u1798\u17bb\u17b8", "\u1798\u17c9\u17b8"),
    # ោ typed as េ + ា: ស េ ា ភ ា -> សោភា
    ("\u179f\u17c1\u17b6\u1797\u17b6", "សោភា"),
    # ើ typed as េ + ី: ច េ ី ន -> ចើន
    ("\u1785\u17c1\u17b8\u1793", "\u1785\u17be\u1793"),
    # doubled coeng
    ("\u179f\u17d2\u17d2\u179a\u17b8", "ស្រី"),
    # a zero-width space between the words of a name, and spaces around
    (f"  ម៉ៅ{ZWSP} សុភា ", "ម៉ៅ សុភា"),
])
def test_typed_variants_normalise_to_one_order(typed, canonical):
    assert typed != canonical
    assert normalise(typed) == canonical


def test_normalise_keeps_what_was_typed_including_coeng_da():
    kandal = "កណ\u17d2\u178aាល"  # កណ្ដាល, spelled with coeng da
    assert normalise(kandal) == kandal
    assert normalise("ម៉ៅ សុភា") == "ម៉ៅ សុភា"


def test_normalise_is_idempotent_and_leaves_nfc_latin_alone():
    for text in ("ស្ត្រី", "ម៉ៅ សុភា", "Sóphéap", "Ｓｏｋ"):
        assert normalise(normalise(text)) == normalise(text)
    assert normalise(unicodedata.normalize("NFD", "Sóphéap")) == unicodedata.normalize("NFC", "Sóphéap")
    # Khmer has no canonical decompositions: NFD input is the same text
    assert normalise(unicodedata.normalize("NFD", "ម៉ៅ សុភា")) == "ម៉ៅ សុភា"


# ---- the Khmer matching key ------------------------------------------------------------------------------

def test_look_alike_subscripts_match_in_the_key_only():
    with_da, with_ta = "កណ\u17d2\u178aាល", "កណ\u17d2\u178fាល"
    assert normalise(with_da) != normalise(with_ta)
    assert khmer_key(with_da) == khmer_key(with_ta)


def test_key_drops_joiners_and_keeps_words():
    held_up = "ហ៊\u200cឹម"  # ZWNJ keeps the triisap from being drawn as -u: nothing to a search
    assert normalise(held_up) == held_up  # the stored text keeps it
    assert khmer_key(held_up) == "ហ៊ឹម"
    assert khmer_key("ម៉ៅ  សុភា, Mao") == "ម៉ៅ សុភា"
    assert khmer_key("Mao Sophea") == ""


# ---- romanisation ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("khmer, latin", [
    ("ម៉ៅ សុភា", "Mao Sophea"),
    ("សុខ ចន្ធូ", "Sok Chanthou"),
    ("ហេង សំរិន", "Heng Samrin"),
    ("ចាន់ ថុល", "Chan Thol"),
    ("ជា ស៊ីម", "Chea Sim"),
    ("ពិសិដ្ឋ", "Piseth"),
    ("សម្បត្តិ", "Sambath"),
    ("ប្រាក់", "Prak"),
    ("ឆៃអ៊ាង", "Chhai Eang"),  # a syllable without a consonant starts a Latin word
    ("Sok Dara", "Sok Dara"),  # other scripts as typed
])
def test_romanise_writes_names_as_they_are_usually_spelled(khmer, latin):
    assert romanise(khmer) == latin


# ---- the phonetic key ------------------------------------------------------------------------------------

@pytest.mark.parametrize("a, b", [
    ("sophea", "sophia"), ("chanthou", "chantho"), ("srey", "srei"), ("sokh", "sok"), ("vannak", "vanak"),
    ("tea", "tia"), ("kaev", "keo"), ("sar", "sa"), ("panha", "banha"), ("chenda", "chenta"),
])
def test_phonetic_key_folds_romanisation_variants(a, b):
    assert phonetic_key(a) == phonetic_key(b)


@pytest.mark.parametrize("a, b", [
    ("sophea", "sopheap"),  # សុភា and សុភាព are two names; a prefix search still finds Sopheap by Sophea
    ("pisey", "piseth"),  # ពិសី and ពិសិដ្ឋ likewise
    ("sok", "sam"), ("chan", "chon"),
])
def test_phonetic_key_keeps_different_names_apart(a, b):
    assert phonetic_key(a) != phonetic_key(b)


def test_search_keys_fold_case_and_accents():
    assert search_keys("SÓPHEA Máo") == search_keys("sophea mao")


# ---- cross-script search and duplicate blocks -----------------------------------------------------------

def test_a_khmer_registration_is_found_by_its_latin_spellings_and_the_reverse():
    khmer_row, latin_row = search_keys("ម៉ៅ សុភា"), search_keys("Mao Sophea")
    for query in ("Sophea", "Mao Sophea", "sophia", "សុភា", "ម៉ៅ"):
        assert matches(search_keys(query), khmer_row)
    for query in ("សុភា", "ម៉ៅ សុភា", "Sophia"):
        assert matches(search_keys(query), latin_row)
    assert not matches(search_keys("Sok"), khmer_row)
    assert not matches(search_keys("សុខ"), latin_row)


def test_prefix_and_substring_semantics():
    row = search_keys("ម៉ៅ សុភា")
    assert matches(search_keys("Soph"), row, prefix=True)
    assert matches(search_keys("phea"), row)
    assert not matches(search_keys("phea"), row, prefix=True)
    # Khmer by Khmer, typed in another order or with the look-alike subscript
    assert matches(search_keys("\u1798\u17c5\u17c9"), row, prefix=True)
    assert matches(search_keys("កណ\u17d2\u178fាល"), search_keys("ខេត្ត កណ\u17d2\u178aាល"))


def test_compound_names_match_written_joined_or_apart():
    assert matches(search_keys("Srey Mom"), search_keys("ស្រីមុំ"))
    assert matches(search_keys("Sreymom"), search_keys("Srey Mom"))
    assert matches(search_keys("Kimleang"), search_keys("Ly Kim Leang"), prefix=True)


def test_the_duplicate_block_is_the_same_in_both_scripts_and_orders():
    block = search_keys("ម៉ៅ សុភា").block
    assert block == search_keys("Mao Sophea").block == search_keys("Sophia Mao").block
    assert block != search_keys("Mao Sopheap").block
    assert search_keys("ម៉ៅ", "សុភា", "Mao", "Sophea").block == block  # both scripts stored: one block


# ---- the test set: recall stays where it was measured ---------------------------------------------------

DATA = Path(__file__).resolve().parent.parent / "bench" / "data" / "khmer_latin_names.csv"


def test_cross_script_recall_on_the_real_names_stays_above_four_in_five():
    with DATA.open(encoding="utf-8") as f:
        people = [(row["khmer"], row["latin"].split("|")) for row in csv.DictReader(f)]
    assert len(people) >= 200
    queries = [(spelling, search_keys(khmer)) for khmer, spellings in people for spelling in spellings]
    found = sum(matches(search_keys(spelling), row) for spelling, row in queries)
    reverse = sum(matches(search_keys(khmer), search_keys(spellings[0])) for khmer, spellings in people)
    assert found / len(queries) >= 0.8
    assert reverse / len(people) >= 0.8


# ---- any input: no crash, one order ----------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_khmer_text = st.text(
    alphabet=st.sampled_from([chr(c) for c in range(0x1780, 0x17DE)] + [" ", ZWSP, ZWNJ, "\u200d", "a", "-"]),
    max_size=24,
)


@settings(max_examples=300, deadline=None)
@given(_khmer_text)
def test_any_text_normalises_once_and_keys_without_error(text):
    once = normalise(text)
    assert normalise(once) == once
    assert khmer_key(once) == khmer_key(text)
    keys = search_keys(text)
    assert keys == search_keys(once)
    assert romanise(text) == romanise(once)
    assert matches(keys, keys) or not (keys.khmer or keys.phonetic)


def test_an_empty_query_finds_nothing():
    assert search_keys("") == search_keys("  \u200b ") == ("", "", "")
    assert not matches(search_keys(""), search_keys("ម៉ៅ សុភា"))
