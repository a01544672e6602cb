"""Pure functions: name folding and transliteration keys, and the demography derived from a record."""

from datetime import date
from types import SimpleNamespace

import pytest

from app.services.demography import (
    age_in_months,
    age_in_years,
    has_severe_disability,
    idpoor_valid,
    person_age_band,
)
from app.services.names import fold, name_key, search_name, search_terms
from app.vocabulary import AGE_BANDS, DISABILITY_DOMAINS, age_band

# ---- folding --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, folded", [
    ("Sok Chanthou", "sok chanthou"),
    ("SOK CHANTHOU", "sok chanthou"),
    ("Sóphéap", "sopheap"),
    ("ÑGÍN", "ngin"),
    ("Nguyễn Thị", "nguyen thi"),
    ("  Sok \t Chanthou  ", "sok chanthou"),
    ("Sok-Chanthou, Jr.", "sok chanthou jr"),
    ("Ｓｏｋ", "sok"),  # full-width letters from some keyboards
    ("Straße", "strasse"),
    ("", ""),
])
def test_fold_ignores_case_accents_and_punctuation(text, folded):
    assert fold(text) == folded


def test_fold_keeps_khmer_script_with_its_vowel_signs_and_subscripts():
    name = "សុខ ចន្ធូ"  # Sok Chanthou: ុ and ូ are vowel signs, ្ makes the subscript
    assert fold(name) == name
    assert "\u17bb" in fold(name) and "\u17d2" in fold(name)
    assert fold("សុខ-ចន្ធូ") == name


def test_search_name_is_family_then_given():
    assert search_name("Chanthou", "Sok") == "sok chanthou"
    assert search_name("Chánthou", "SOK") == search_name("chanthou", "sok")


def test_search_terms_are_folded_and_bounded():
    assert search_terms("  CHÁNTH  sok ") == ["chanth", "sok"]
    assert search_terms("a b c d e f g") == ["a", "b", "c", "d", "e"]
    assert search_terms("...") == []


# ---- transliteration keys -------------------------------------------------------------------------------


@pytest.mark.parametrize("variants", [
    [("Chanthou", "Sok"), ("Chanthu", "Sokh"), ("Chantou", "Sok"), ("chánthou", "SOK"), ("Sok", "Chanthou")],
    [("Vannak", "Chea"), ("Vanak", "Chia"), ("Vannak", "Cheа".replace("а", "a"))],
    [("Phalla", "Keo"), ("Pala", "Keo")],
    [("Thida", "Sok"), ("Tida", "Sokh")],
    [("Sreymom", "Kim"), ("Sreymomm", "Kim"), ("Sreimom", "Kim")],
])
def test_name_key_erases_romanisation_variants_and_order(variants):
    keys = {name_key(given, family) for given, family in variants}
    assert len(keys) == 1, keys


@pytest.mark.parametrize("a, b", [
    (("Chanthou", "Sok"), ("Chanthy", "Sok")),
    (("Vannak", "Chea"), ("Vanna", "Chea")),
    (("Dara", "Sok"), ("Dara", "Som")),
])
def test_name_key_keeps_different_names_apart(a, b):
    assert name_key(*a) != name_key(*b)


def test_name_key_meets_khmer_script_in_its_romanised_form():
    assert name_key("ចន្ធូ", "សុខ") == name_key("Chanthou", "Sok") == "canto sok"
    assert name_key("សុភា", "ម៉ៅ") == name_key("Sophia", "Mao")


# ---- ages -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("born, on, months", [
    (date(2020, 1, 15), date(2020, 1, 15), 0),
    (date(2020, 1, 15), date(2020, 2, 14), 0),
    (date(2020, 1, 15), date(2020, 2, 15), 1),
    (date(2020, 1, 15), date(2022, 1, 14), 23),  # not yet two: still "under 2"
    (date(2020, 1, 15), date(2022, 1, 15), 24),
    # Month ends: a month is complete on the same day number, or on the 1st after a shorter month.
    (date(2021, 1, 31), date(2021, 2, 28), 0),
    (date(2021, 1, 31), date(2021, 3, 1), 1),
    (date(2021, 1, 31), date(2021, 3, 31), 2),
    (date(2021, 3, 31), date(2021, 4, 30), 0),
    (date(2021, 3, 31), date(2021, 5, 1), 1),
    # Leap days: born 29 February, one year old on 1 March of a common year, on 29 February of a leap year.
    (date(2020, 2, 29), date(2021, 2, 28), 11),
    (date(2020, 2, 29), date(2021, 3, 1), 12),
    (date(2020, 2, 29), date(2024, 2, 28), 47),
    (date(2020, 2, 29), date(2024, 2, 29), 48),
    # A day before birth (a date typed wrong) is not a negative age.
    (date(2020, 5, 1), date(2020, 4, 30), 0),
])
def test_age_in_months(born, on, months):
    assert age_in_months(born, born.year, on) == months
    assert age_in_years(born, born.year, on) == months // 12


def test_an_approximate_age_counts_from_the_middle_of_the_year():
    assert age_in_years(None, 2000, date(2026, 6, 30)) == 25
    assert age_in_years(None, 2000, date(2026, 7, 1)) == 26
    assert age_in_months(None, 2025, date(2026, 1, 1)) == 6
    assert age_in_months(None, 2026, date(2026, 3, 1)) == 0  # born "this year", not yet July


@pytest.mark.parametrize("years, band", [(0, "0-4"), (4, "0-4"), (5, "5-17"), (17, "5-17"), (18, "18-59"),
                                         (59, "18-59"), (60, "60+"), (104, "60+")])
def test_age_bands(years, band):
    assert age_band(years) == band
    assert band in AGE_BANDS


def test_person_age_band_uses_the_birth_date_when_known():
    person = SimpleNamespace(birth_date=date(2008, 12, 31), birth_year=2008)
    assert person_age_band(person, date(2026, 12, 30)) == "5-17"
    assert person_age_band(person, date(2026, 12, 31)) == "18-59"


# ---- disability and IDPoor ------------------------------------------------------------------------------


def _disability(**levels):
    return SimpleNamespace(**{f"disability_{d}": levels.get(d, "none") for d in DISABILITY_DOMAINS})


def test_washington_group_cut_off():
    assert has_severe_disability(_disability()) is False
    assert has_severe_disability(_disability(seeing="some", hearing="some", walking="some")) is False
    assert has_severe_disability(_disability(walking="a_lot")) is True
    assert has_severe_disability(_disability(communicating="cannot")) is True


def test_idpoor_validity():
    on = date(2026, 6, 30)
    assert idpoor_valid(SimpleNamespace(idpoor_level=1, idpoor_valid_until=None), on) is True
    assert idpoor_valid(SimpleNamespace(idpoor_level=2, idpoor_valid_until=on), on) is True
    assert idpoor_valid(SimpleNamespace(idpoor_level=1, idpoor_valid_until=date(2026, 6, 29)), on) is False
    assert idpoor_valid(SimpleNamespace(idpoor_level=None, idpoor_valid_until=None), on) is False
