"""Khmer names: one canonical encoding, a Latin form, and the keys that let a search or a duplicate check
meet a name whichever script it was typed in.

- `normalise` puts every orthographic cluster in the order of SIL's Khmer encoding structure (typed
  orders of subscripts, vowels and signs differ; NFC does not fix them). It is what a row stores: the
  characters typed, in canonical order, minus invisible ones that carry nothing in a name.
- `khmer_key` also folds what looks alike (្ដ = ្ត) and drops joiners and spaces: it is compared, never shown.
- `romanise` writes a Khmer name in Latin letters the way Cambodian names are usually spelled
  ("ម៉ៅ សុភា" -> "Mao Sophea"): a compact rule-based transcription, not a lexicon.
- `phonetic_key` folds the spelling variants of romanised Khmer (Sophea / Sophia, Chanthou / Chantho,
  Srey / Srei), case and accents.
- `search_keys` gives a registry row its keys; `matches` compares them as a search would.

Choices and measured figures: docs/khmer.md."""

import re
import unicodedata
from functools import lru_cache
from typing import NamedTuple

COENG = "\u17d2"
ZWNJ, ZWJ = "\u200c", "\u200d"
MUUSIKATOAN, TRIISAP = "\u17c9", "\u17ca"
COENG_DA, COENG_TA = COENG + "\u178a", COENG + "\u178f"

_CONSONANTS = frozenset(map(chr, range(0x1780, 0x17A3)))
_INDEPENDENT_VOWELS = frozenset(map(chr, range(0x17A3, 0x17B4)))
_BASES = _CONSONANTS | _INDEPENDENT_VOWELS
_KHMER = re.compile("[\u1780-\u17ff\u19e0-\u19ff]")

# Invisible characters that carry nothing in a name: zero-width space (a word-break hint), word joiner,
# byte-order mark, soft hyphen, and the two inherent-vowel signs Unicode tells not to use.
_INVISIBLE = str.maketrans(dict.fromkeys("\u200b\u2060\ufeff\u00ad\u17b4\u17b5"))

# Rank of each mark in the canonical cluster order: base, robat, subscripts, shifter, joiner, vowel
# (pre, below, above, post), signs, final signs. A stable sort keeps the typed order within a rank.
_ROBAT, _SUBSCRIPT, _SHIFTER, _JOINER, _VPRE, _VBELOW, _VABOVE, _VPOST, _SIGN, _FINAL = range(1, 11)
_RANK = {
    "\u17cc": _ROBAT,
    MUUSIKATOAN: _SHIFTER, TRIISAP: _SHIFTER,
    ZWNJ: _JOINER, ZWJ: _JOINER,
    **dict.fromkeys("\u17be\u17bf\u17c0\u17c1\u17c2\u17c3\u17c4\u17c5", _VPRE),
    **dict.fromkeys("\u17bb\u17bc\u17bd", _VBELOW),
    **dict.fromkeys("\u17b7\u17b8\u17b9\u17ba", _VABOVE),
    "\u17b6": _VPOST,
    **dict.fromkeys("\u17c6\u17cb\u17cd\u17ce\u17cf\u17d0\u17d1\u17d3\u17dd", _SIGN),
    "\u17c7": _FINAL, "\u17c8": _FINAL,
}
# A vowel typed in two parts that renders as one vowel.
_SPLIT_VOWELS = [
    (re.compile("\u17c1([\u17bb-\u17bd]?)\u17b8"), "\u17be\\1"),  # េ + ី = ើ
    (re.compile("\u17c1([\u17bb-\u17bd]?)\u17b6"), "\u17c4\\1"),  # េ + ា = ោ
    (re.compile("\u17be([\u17bb-\u17bd]?)\u17b6"), "\u17c4\\1\u17b8"),  # ើ + ា = ោ + ី
]
# Under an upper vowel a shifter is drawn like the vowel -u, so -u is often typed for it.
_DRAWN_AS_U = re.compile("[\u17b7-\u17ba\u17be\u17bf\u17d0\u17dd]|\u17b6\u17c6")
# Consonants that take the muusikatoan (៉); the others take the triisap (៊).
_SONORANTS = frozenset("\u1784\u1789\u178e\u1793\u1798\u1799\u179a\u179b\u179c\u17a1")
_BA = "\u1794"


def _units(marks: str) -> list[tuple[int, str]]:
    """The marks after a base as (rank, text) units; a coeng and its consonant are one unit."""
    units, i, n = [], 0, len(marks)
    while i < n:
        c = marks[i]
        if c == COENG:
            j = i + 1
            while j < n and marks[j] in (COENG, ZWNJ, ZWJ):  # doubled coengs and stray joiners
                j += 1
            if j < n and marks[j] in _BASES:
                units.append((_SUBSCRIPT, COENG + marks[j]))
                i = j + 1
                continue
            units.append((_SUBSCRIPT, COENG))
        else:
            units.append((_RANK[c], c))
        i += 1
    return units


def _cluster(base: str, marks: str) -> str:
    units = _units(marks)
    ranks = {rank for rank, _ in units}
    vowel_marks = "".join(text for rank, text in units if rank >= _VPRE)
    if _VBELOW in ranks and _SHIFTER not in ranks and "\u17bb" in vowel_marks and _DRAWN_AS_U.search(vowel_marks):
        consonants = {base} | {text[1] for rank, text in units if rank == _SUBSCRIPT and len(text) == 2}
        muusikatoan = _BA in consonants or consonants <= _SONORANTS
        i = next(k for k, (rank, text) in enumerate(units) if text == "\u17bb")
        units[i] = (_SHIFTER, MUUSIKATOAN if muusikatoan else TRIISAP)
    units.sort(key=lambda unit: unit[0])
    subscripts = [text for rank, text in units if rank == _SUBSCRIPT]
    # With two subscripts, ro is the last (ស្ត្រ, not ស្រ្ត).
    if len(subscripts) == 2 and subscripts[0] == COENG + "\u179a":
        first = next(k for k, (rank, _) in enumerate(units) if rank == _SUBSCRIPT)
        units[first], units[first + 1] = units[first + 1], units[first]
    cluster = base + "".join(text for _, text in units)
    for pattern, replacement in _SPLIT_VOWELS:
        cluster = pattern.sub(replacement, cluster)
    return cluster


def normalise(text: str) -> str:
    """Khmer text in one canonical character order (SIL Khmer encoding structure), whitespace collapsed.
    Other scripts pass through (NFC)."""
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    if not _KHMER.search(text):
        return " ".join(text.split())
    out, i, n = [], 0, len(text)
    while i < n:
        base = text[i]
        i += 1
        if base not in _BASES:
            out.append(base)
            continue
        j = i
        while j < n and (text[j] in _RANK or text[j] == COENG or (text[j] in _BASES and text[j - 1] == COENG)):
            j += 1
        out.append(_cluster(base, text[i:j]) if j > i else base)
        i = j
    return " ".join("".join(out).split())


# ---- the Khmer matching key -----------------------------------------------------------------------------

# Deprecated independent vowels are spelled with អ; joiners change nothing a reader sees.
_KEY_FOLD = str.maketrans({"\u17a3": "\u17a2", "\u17a4": "\u17a2\u17b6", ZWNJ: None, ZWJ: None})
_NOT_KHMER_LETTER = re.compile("[^\u1780-\u17dd]+")


def khmer_key(text: str) -> str:
    """The Khmer letters of `text`, normalised, look-alikes folded (្ដ = ្ត), words separated by one space."""
    return _khmer_key_of_normalised(normalise(text))


def _khmer_key_of_normalised(text: str) -> str:
    text = text.replace(COENG_DA, COENG_TA).translate(_KEY_FOLD)
    return " ".join(_NOT_KHMER_LETTER.sub(" ", text).split())


# ---- romanisation ---------------------------------------------------------------------------------------

_SERIES_2 = frozenset("គឃងជឈញឌឍទធនពភមយរលវ")
_LETTERS = "កខគឃងចឆជឈញដឋឌឍណតថទធនបផពភមយរលវឝឞសហឡអ"
_ONSET = dict(zip(_LETTERS, "k kh k kh ng ch chh ch chh nh d th d th n t th t th n b ph p ph m y r l v s s s h l -".split()))
_CODA = dict(zip(_LETTERS, "k k k k ng ch ch ch ch nh th th th th n th th th th n p p p p m y r l v s s s h l -".split()))
_ONSET["អ"] = _CODA["អ"] = ""
# As a subscript ត and ដ look alike and are both said d after a nasal (ចិន្តា Chenda).
_SUBSCRIPT_ONSET = {**_ONSET, "ត": "d", "ដ": "d"}
_INDEPENDENT = dict(zip("ឣឤឥឦឧឨឩឪឫឬឭឮឯឰឱឲឳ", "a a e ei o ok ou au rue rueu lue lueu ae ai ao ao au".split()))
# Vowel -> (first series, second series), as Cambodian names are usually spelled. The inherent vowel
# of the second series is o in a closed syllable or at the end (Kong, Ros), a elsewhere (Ratanak).
_INHERENT_O = "\u0254"
_VOWEL = {
    "": ("a", _INHERENT_O), "\u17b6": ("a", "ea"), "\u17b7": ("e", "i"), "\u17b8": ("ei", "i"),
    "\u17b9": ("oe", "eu"), "\u17ba": ("eu", "eu"), "\u17bb": ("o", "u"), "\u17bc": ("ou", "ou"),
    "\u17bd": ("uo", "uo"), "\u17be": ("aeu", "eu"), "\u17bf": ("oea", "oea"), "\u17c0": ("ea", "ea"),
    "\u17c1": ("e", "e"), "\u17c2": ("ae", "ae"), "\u17c3": ("ai", "ey"), "\u17c4": ("ao", "o"),
    "\u17c5": ("ao", "ou"),
    # with nikahit (-m)
    "\u17c6": ("am", "um"), "\u17bb\u17c6": ("om", "um"), "\u17b6\u17c6": ("am", "eam"),
    "\u17b7\u17c6": ("em", "im"),
    # with samyok sannya
    "\u17d0": ("a", "ea"),
}
_VOWEL_SIGNS = frozenset("\u17b6\u17b7\u17b8\u17b9\u17ba\u17bb\u17bc\u17bd\u17be\u17bf\u17c0\u17c1\u17c2\u17c3\u17c4\u17c5\u17c6\u17d0")
_FINAL_SIGNS = {"\u17c7": "h", "\u17c8": "k"}  # reahmuk (ព្រះ Preah), yuukaleapintu (រតនៈ Ratanak)
_SILENT = frozenset("\u17cd\u17d1")  # toandakhiat, virama: the letter is not said
_FOREIGN = {"ហគ": "g", "ហវ": "f", "ហប": "b"}  # ហ្គ, ហ្វ, ហ្ប write sounds Khmer lacks (Guek, Safy)


class _Cluster(NamedTuple):
    base: str
    subscripts: str
    shifter: str
    vowel: str  # vowel signs, nikahit and samyok sannya, in canonical order
    final: str  # "h" or "k" from a final sign
    silent: bool

    @property
    def voiced(self) -> bool:
        return bool(self.vowel or self.final) or self.base in _INDEPENDENT


def _clusters(word: str) -> list[_Cluster]:
    clusters, i, n = [], 0, len(word)
    while i < n:
        base = word[i]
        i += 1
        if base not in _BASES:
            continue
        subscripts, shifter, vowel, final, silent = "", "", "", "", False
        while i < n and word[i] not in _BASES:
            c = word[i]
            if c == COENG and i + 1 < n and word[i + 1] in _BASES:
                subscripts += word[i + 1]
                i += 1
            elif c in (MUUSIKATOAN, TRIISAP):
                shifter = c
            elif c in _VOWEL_SIGNS:
                vowel += c
            elif c in _FINAL_SIGNS:
                final = _FINAL_SIGNS[c]
            elif c in _SILENT:
                silent = True
            elif not ("\u17b6" <= c <= "\u17dd" or c in (ZWNJ, ZWJ)):
                break
            i += 1
        if base + subscripts[:1] in _FOREIGN:
            base, subscripts = base + subscripts[:1], subscripts[1:]
        clusters.append(_Cluster(base, subscripts, shifter, vowel, final, silent))
    return clusters


def _series(cluster: _Cluster) -> int:
    if cluster.shifter:
        return 0 if cluster.shifter == MUUSIKATOAN else 1
    # A subscript that is not a sonorant gives the cluster its series (ស្គ is second series).
    sub = cluster.subscripts[:1]
    return 1 if (sub if sub and sub not in _SONORANTS else cluster.base[0]) in _SERIES_2 else 0


def _onset(letters: str, shifter: str, table: dict[str, str] = _ONSET) -> str:
    if letters[:2] in _FOREIGN:
        return _FOREIGN[letters[:2]] + "".join(table[c] for c in letters[2:])
    onset = "".join(table.get(c, "") for c in letters)
    # ប sounds p before a subscript and with the muusikatoan (ប្រាក់ Prak, ប៉ិច Pich).
    if letters[0] == _BA and (len(letters) > 1 or shifter == MUUSIKATOAN):
        onset = "p" + onset[1:]
    return onset


def _vowel(cluster: _Cluster) -> str:
    if cluster.base in _INDEPENDENT:
        return _INDEPENDENT[cluster.base]
    text = (_VOWEL.get(cluster.vowel) or _VOWEL[cluster.vowel[:1]])[_series(cluster)]
    if cluster.final:
        if not cluster.vowel:
            text = "ea" if _series(cluster) else "a"  # ព្រះ Preah
        text += cluster.final
    return text


def _subscript_syllable(cluster: _Cluster) -> list[str]:
    """The syllable a subscript starts when its base closed the syllable before (ចន្ធូ Chan-thou)."""
    rest = cluster._replace(base=cluster.subscripts[0], subscripts=cluster.subscripts[1:])
    return [_onset(cluster.subscripts, cluster.shifter, _SUBSCRIPT_ONSET), _vowel(rest), ""]


def _close(syllable: list[str], cluster: _Cluster) -> None:
    syllable[2] = _CODA[cluster.base[0]]
    if syllable[1] == _INHERENT_O and _CODA.get(cluster.subscripts[:1]) == syllable[2]:
        syllable[1] = "a"  # before a doubled consonant the inherent vowel is a (សុវណ្ណ Sovann, វត្ថ Vath)


def _romanise_word(word: str) -> str:
    syllables: list[list[str]] = []  # [onset, vowel, coda]
    clusters = _clusters(word)
    last = len(clusters) - 1
    written_before = False  # whether the syllable before has a written vowel
    for i, cluster in enumerate(clusters):
        if cluster.silent:
            continue
        open_before = bool(syllables) and not syllables[-1][2] and cluster.base in _CODA
        doubled = cluster.subscripts[:1] and _CODA.get(cluster.subscripts[0]) == _CODA.get(cluster.base)
        if not cluster.voiced and open_before and (i == last or cluster.subscripts):
            # A bare consonant closes the syllable before it (សុខ Sok); its subscript starts the next one
            # (សម្បត្តិ Sam-bat, នរោត្តម No-ro-dom) unless it only doubles it before a vowel (វណ្ណដា Van-da).
            _close(syllables[-1], cluster)
            if cluster.subscripts and i < last and not (doubled and clusters[i + 1].voiced):
                syllables.append(_subscript_syllable(cluster))
                written_before = False
            continue
        if cluster.voiced and cluster.subscripts and open_before:
            # In a word, a consonant with a subscript closes the syllable before it (ចន្ធូ Chan-thou).
            _close(syllables[-1], cluster)
            if i == last and cluster.vowel in ("\u17b7", "\u17bb"):
                continue  # a short final vowel after a Pali cluster is not said (សម្បត្តិ Sambath)
            syllables.append(_subscript_syllable(cluster))
            written_before = True
            continue
        if (not cluster.voiced and not cluster.subscripts and open_before and written_before
                and clusters[i + 1].voiced and not clusters[i + 1].subscripts):
            # Between two written vowels a bare consonant closes the first syllable of a compound name
            # (គីមហួន Kim-huon), not after an inherent vowel (រតនៈ Ra-ta-nak).
            syllables[-1][2] = _CODA[cluster.base[0]]
            continue
        onset = "" if cluster.base in _INDEPENDENT else _onset(cluster.base + cluster.subscripts, cluster.shifter)
        syllables.append([onset, _vowel(cluster), ""])
        written_before = cluster.voiced
    out = []
    for k, (onset, vowel, coda) in enumerate(syllables):
        if vowel == _INHERENT_O:
            vowel = "a" if not coda and k + 1 < len(syllables) else "o"
        following = syllables[k + 1][0] if k + 1 < len(syllables) else ""
        if len(coda) > 1 and following.startswith(coda):
            coda = ""  # កញ្ញា Kanha, not Kanhnha
        if vowel.endswith("m") and coda == "ng":
            vowel, coda = vowel[:-1] + "i", "ng"  # ាំង is written aing (Kaing, Baraing)
        # A syllable without a consonant starts a new word in Latin (ឆៃអ៊ាង Chhai Eang, សំអន Sam An).
        out.append((" " if k and not onset else "") + onset + vowel + coda)
    return "".join(out)


@lru_cache(maxsize=8192)
def _romanise_khmer_word(word: str) -> str:
    return " ".join(part.capitalize() for part in _romanise_word(word).split())


def romanise(text: str) -> str:
    """A Khmer name in Latin letters, each word capitalised; words in other scripts are kept as typed."""
    return _romanise_normalised(normalise(text))


def _romanise_normalised(text: str) -> str:
    words = (_romanise_khmer_word(w) if _KHMER.search(w) else w for w in text.split())
    return " ".join(w for w in words if w)


# ---- the phonetic key over the Latin form ---------------------------------------------------------------

_LATIN_DIACRITICS = re.compile("[\u0300-\u036f]")
# nh and ny are ញ only at either end of a word: inside, they are mostly n + h or n + y of a compound
# (Bunhor, Monyvann). b = p: ប is written either way (Panha, Bopha); d = t: ដ and ត, like their
# look-alike subscripts, are written either way (Chenda for ចិន្តា, Keopichda for ពេជ្ជតា).
_CONSONANT_SPELLINGS = re.compile("chh|ch|kh|th|ph|sh|dh|^nh|nh$|^ny|gn|[bcdjqxzw]")
_CONSONANT_SOUND = {
    "chh": "c", "ch": "c", "kh": "k", "th": "t", "ph": "p", "sh": "s", "dh": "t", "nh": "n", "ny": "n",
    "gn": "n", "b": "p", "c": "k", "d": "t", "j": "c", "q": "k", "x": "s", "z": "s", "w": "v",
}
_Y_BEFORE_VOWEL = re.compile("y(?=[aeiou])")  # a consonant (Yem, Kimyan); elsewhere a vowel (Srey, Ly)
_VOWEL_RUN = re.compile("[aeiouy]+")
_VOWEL_CLASS = {
    # ា and ៀ of the second series are written a, ea, ia or ie (Dara, Sophea, Sophia, Tea, Tia, Khieu).
    "a": "a", "ea": "a", "ia": "a", "ie": "a", "ieu": "a", "iea": "a", "oa": "a", "ua": "a",
    "e": "e", "i": "e", "y": "e", "ee": "e", "ii": "e", "ei": "e", "ey": "e", "iy": "e",
    "ae": "e", "ai": "e", "ay": "e", "aey": "e", "eo": "e", "iey": "e", "aei": "e",
    "oe": "e", "eu": "e", "oeu": "e", "aeu": "e", "oea": "e", "eou": "e", "ueu": "e", "ue": "e",
    "o": "o", "u": "o", "ou": "o", "oo": "o", "uo": "o", "ao": "o", "au": "o", "uu": "o", "oy": "o",
}
_FIRST_LETTER_CLASS = {"a": "a", "e": "e", "i": "e", "y": "e", "o": "o", "u": "o"}
_AFTER_VOWEL = re.compile("(?<=[aeo])[rhv](?=[^aeo]|$)")  # Sar, Sokh, Kaev: r, h, v after a vowel are not said
_DOUBLED = re.compile(r"(.)\1+")


def _vowel_class(match: re.Match) -> str:
    run = match.group()
    return _VOWEL_CLASS.get(run) or _FIRST_LETTER_CLASS[run[0]]


def _fold_latin(text: str) -> str:
    text = _LATIN_DIACRITICS.sub("", unicodedata.normalize("NFKD", text)).casefold()
    return "".join(c if "a" <= c <= "z" else " " for c in text)


@lru_cache(maxsize=16384)
def phonetic_key(token: str) -> str:
    """One romanised word (folded: a-z) reduced to its sound: consonant spellings, vowel spellings and
    silent final letters folded, doubled letters single."""
    token = _CONSONANT_SPELLINGS.sub(lambda m: _CONSONANT_SOUND[m.group()], token)
    token = _VOWEL_RUN.sub(_vowel_class, _Y_BEFORE_VOWEL.sub("Y", token)).lower()
    return _DOUBLED.sub(r"\1", _AFTER_VOWEL.sub("", token))


# ---- keys of a registry row, and how a search compares them ---------------------------------------------

class SearchKeys(NamedTuple):
    khmer: str  # khmer_key of the Khmer words, "" when none
    phonetic: str  # phonetic keys of the Latin form (typed, or romanised from Khmer), space-separated
    block: str  # the phonetic keys sorted, order-free: the duplicate-matching block


def search_keys(*names: str) -> SearchKeys:
    """Keys of a row from its names in either script ("ម៉ៅ សុភា", "Mao Sophea", or both)."""
    khmer, phonetic = [], []
    for name in names:
        text = normalise(name)
        if key := _khmer_key_of_normalised(text):
            khmer.append(key)
        for token in _fold_latin(_romanise_normalised(text)).split():
            if (key := phonetic_key(token)) and key not in phonetic:
                phonetic.append(key)
    return SearchKeys(" ".join(khmer), " ".join(phonetic), " ".join(sorted(phonetic)))


def _found(wanted: list[str], words: list[str], prefix: bool) -> bool:
    """Whether every wanted key is in the words, spaces ignored (a compound name is written joined or
    apart: Sreymom, Srey Mom); with `prefix`, each must start where a word starts."""
    joined = _DOUBLED.sub(r"\1", "".join(words))
    wanted = [_DOUBLED.sub(r"\1", w) for w in wanted]
    if not prefix:
        return all(w in joined for w in wanted)
    starts = [_DOUBLED.sub(r"\1", "".join(words[i:])) for i in range(len(words))]
    query = "".join(wanted)
    return any(s.startswith(query) for s in starts) or all(any(s.startswith(w) for s in starts) for w in wanted)


def matches(query: SearchKeys, row: SearchKeys, prefix: bool = False) -> bool:
    """Whether a search for `query` finds `row`: its Khmer key or all its phonetic keys found in the
    row's, from a word start (`prefix`) or anywhere (substring)."""
    if query.khmer and row.khmer and _found([query.khmer.replace(" ", "")], row.khmer.split(), prefix):
        return True
    return bool(query.phonetic and row.phonetic) and _found(query.phonetic.split(), row.phonetic.split(), prefix)
