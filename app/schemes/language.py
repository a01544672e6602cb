"""A screening's words in the reader's language (docs/i18n.md).

A determination is stored once, in English: its verdict, rules version and, per reason, the rule, its
result and the fact value it looked at. Those are what it says; the words are said again when it is read,
in the language the reader asked for, from the scheme file's messages of that rules version. So a
re-screen compares like with like whatever the language of the clerks who screened, and a Khmer clerk
reads in Khmer a screening that a French-speaking adviser ran. Partner schemes answer in their own
words: those stay as the partner gave them."""

from app.i18n import current_language, translate
from app.schemas.screening import DeterminationRead, Explanation, ReasonRead, ScreeningRead
from app.schemes.registry import SchemeRegistry


# The reasons Guichet itself gives for a scheme it asks (app/schemes/http.py, dci.py, services/screening.py).
OUR_RULES = frozenset({"consent", "partner", "national_id", "enrolled", "not_enrolled", "adapter"})


def scheme_name(registry: SchemeRegistry, code: str, recorded: str, language: str | None = None) -> str:
    """A scheme's name in the reader's language; the name recorded with the record when the scheme is gone."""
    adapter = registry.get(code)
    return adapter.metadata.name_in(language or current_language()) if adapter is not None else recorded


def agency_name(registry: SchemeRegistry, code: str, recorded: str, language: str | None = None) -> str:
    """The name of the agency running a scheme, likewise."""
    adapter = registry.get(code)
    if adapter is None or recorded != adapter.metadata.agency:  # recorded under another name: keep it
        return recorded
    return adapter.metadata.agency_in(language or current_language())


def localise_determination(registry: SchemeRegistry, d: DeterminationRead, language: str) -> DeterminationRead:
    adapter = registry.get(d.scheme_code)
    if adapter is None:
        return d
    update: dict = {"scheme_name": adapter.metadata.name_in(language)}
    say_again = getattr(adapter, "say_again", None)
    said = None
    if say_again is not None and d.rules_version is not None:
        said = say_again(d.rules_version, d.reasons, d.explanation, language)
    if said is not None:
        # model_construct: the values are the stored, validated ones with only the words changed.
        update["reasons"] = [ReasonRead.model_construct(rule=r.rule, result=r.result, message=m, facts=r.facts)
                             for r, m in zip(d.reasons, said["messages"])]
        update["hints"] = said["hints"]
        if said["explanation"] is not None:
            update["explanation"] = _explanation(said["explanation"])
        if d.benefit is not None and said["benefit"] is not None:
            update["benefit"] = d.benefit.model_copy(update={"description": said["benefit"]})
    elif d.reasons:
        # Guichet's own words about a partner scheme (not asked, unavailable, enrolled...) are in the catalogue;
        # a partner's own reasons (its rule codes) stay as the partner gave them.
        update["reasons"] = [r.model_copy(update={"message": translate(r.message, language)}) if r.rule in OUR_RULES else r
                             for r in d.reasons]
    return d.model_copy(update=update)


# The rules engine builds one explanation per (language, results) and returns that same object for every
# subject with those results (RulesVersion.explain); its model is built once too.
_EXPLANATIONS: dict[int, tuple[dict, Explanation]] = {}
_EXPLANATIONS_KEPT = 4096


def _explanation(explained: dict) -> Explanation:
    found = _EXPLANATIONS.get(id(explained))
    if found is not None and found[0] is explained:
        return found[1]
    if len(_EXPLANATIONS) >= _EXPLANATIONS_KEPT:
        _EXPLANATIONS.clear()
    model = Explanation.model_validate(explained)
    _EXPLANATIONS[id(explained)] = (explained, model)  # the dict is kept, so its id is not reused meanwhile
    return model


def localise_screening(registry: SchemeRegistry, screening: ScreeningRead, language: str | None = None) -> ScreeningRead:
    """The screening as the reader's language says it; English, the stored words, as it is."""
    language = language or current_language()
    if language == "en":
        return screening
    return screening.model_copy(update={
        "determinations": [localise_determination(registry, d, language) for d in screening.determinations]})
