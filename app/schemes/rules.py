"""The rules adapter: a scheme's eligibility written as data, checked here.

A rules file holds effective-dated versions; each version has parameters (the figures, some of them
UNVERIFIED and so kept out of the code), a rule tree and an optional benefit. The tree is made of
`all` / `any` / `not` and leaves that compare one named fact with a value (eq, ne, lt, le, gt, ge, in,
between). Each leaf carries its plain-language message keyed by language (English required), so
Khmer and French can be added to the files without touching this engine. Nothing is evaluated as
code: the file is parsed into the small tree of app/schemes/rule_tree.py and checked against the fact
catalogue when it is loaded, so a broken file fails at start-up with its line, not at the first screening.

Logic is three-valued (Kleene): a leaf whose fact is not recorded is unknown; `all` is false if any
child is false, `any` is true if any child is true, and otherwise unknown wins. An unknown verdict is
`needs_information`, naming the facts that would settle it.

A version may name its `target` group (a rule like the others: "children aged 6 to 18"). The verdict
is then target and rules together, but a subject outside the target group gets the target's one
plain reason, not the rules' requests for facts that could not matter. Each determination explains
itself beside its flat reasons: a tree that mirrors the rules, each node with its result and whether
it is `decisive` (part of why the verdict is what it is: the path of an `any` that made it eligible,
the criterion of an `all` that failed, what is still unknown)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter
from typing import Any

from app.schemes.base import (
    Benefit,
    CheckRequest,
    Determination,
    Messages,
    Reason,
    ReasonResult,
    SchemeHealth,
    SchemeMetadata,
    SchemeVersion,
    say,
)
from app.schemes.definition import (
    PLACEHOLDER,
    DefinitionFile,
    parse_messages,
    parse_metadata,
    parse_parameters,
    parse_version_info,
)
from app.schemes.facts import ATTRIBUTE_PREFIX, fact_spec
from app.schemes.rule_tree import Expression, Group, Leaf, RuleParser, combine, compile_tree, missing_facts
from app.schemes.yamlfile import LDict, LList
from app.vocabulary import BenefitFrequency, Outcome

# Per rules version and per rule: how many input fingerprints and filled-in messages are remembered.
FINGERPRINTS_KEPT = 1_024
MESSAGES_KEPT = 128


def _fill(template: str, params: dict[str, Any], value: Any) -> str:
    if "{" not in template:
        return template

    def show(v: Any) -> str:
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, int) and abs(v) >= 10000:
            return f"{v:,}"
        if isinstance(v, (list, tuple)):
            return ", ".join(show(x) for x in v)
        return "not recorded" if v is None else str(v)

    return PLACEHOLDER.sub(lambda m: show(value if m.group(1) == "value" else params.get(m.group(1))), template)


@dataclass(slots=True)
class BenefitRule:
    currency: str
    frequency: BenefitFrequency | None
    description: Messages | None
    amount: Expression | None

    def estimate(self, facts: dict[str, Any], params: dict[str, Any], language: str) -> Benefit:
        amount = self.amount.run(facts, params) if self.amount else None
        description = say(self.description, language)
        return Benefit(amount=int(round(amount)) if amount is not None else None, currency=self.currency,
                       frequency=self.frequency, description=_fill(description, params, None) if description else None)


# ---- a version and the adapter -----------------------------------------------------------------------


@dataclass(slots=True)
class RulesVersion:
    info: SchemeVersion
    parameters: dict[str, Any]
    parameter_notes: dict[str, dict[str, Any]]
    root: Any
    leaves: list[Leaf]
    benefit: BenefitRule | None
    facts: set[str] = field(default_factory=set)
    decide: Any = None
    digest: str = ""  # of the version as written in its file: a change of any rule, figure or message changes it
    target: Any = None  # whom the scheme is for (a rule node), or None: everyone
    fact_order: tuple[str, ...] = ()
    fingerprints: dict = field(default_factory=dict, compare=False, repr=False)  # input fingerprints by their facts' values
    explanations: dict = field(default_factory=dict, compare=False, repr=False)  # by (language, leaf results)
    whole: Any = field(default=None, compare=False, repr=False)  # target and rules together: what decides
    in_target: Any = field(default=None, compare=False, repr=False)
    _known: Any = field(default=None, compare=False, repr=False)
    _attributes: tuple[str, ...] = field(default=(), compare=False, repr=False)
    by_rule: dict = field(default_factory=dict, compare=False, repr=False)  # leaves by rule name

    def __post_init__(self) -> None:
        self.by_rule = {leaf.rule: leaf for leaf in self.leaves}
        self.whole = self.root if self.target is None else Group("all", [self.target, self.root])
        self.decide = compile_tree(self.whole)
        self.in_target = compile_tree(self.target) if self.target is not None else (lambda results: True)
        self.fact_order = tuple(sorted(self.facts))
        catalogue = [name for name in self.fact_order if not name.startswith(ATTRIBUTE_PREFIX)]
        self._known = itemgetter(*catalogue) if catalogue else (lambda facts: None)
        self._attributes = tuple(name for name in self.fact_order if name.startswith(ATTRIBUTE_PREFIX))

    def input_fingerprint(self, facts: dict[str, Any], language: str) -> str:
        """A digest of everything a determination of this version depends on: the version itself, the
        language, and the values of the facts it reads. Equal fingerprints mean equal determinations,
        so a re-screen can skip evaluating a subject whose facts did not change."""
        # Most subjects share their few facts' values with many others: a re-screen hashes each set once.
        # A catalogue fact's values have one type (True == 1 == 1.0, but their digests differ); an
        # attribute's may have any, so its type is part of the key.
        key = None
        try:
            key = (language, self._known(facts))
            if self._attributes:
                attributes = tuple(map(facts.get, self._attributes))
                key += (attributes, tuple(map(type, attributes)))
            return self.fingerprints[key]
        except KeyError:  # not seen yet (or a catalogue fact missing from `facts`: key is None)
            pass
        except TypeError:  # an unhashable attribute value
            key = None
        said = (self.digest, language, tuple(_plain(facts.get(name)) for name in self.fact_order))
        digest = hashlib.sha256(repr(said).encode()).hexdigest()[:32]
        if key is not None:
            # Kept small: a serving worker keeps it for its lifetime (the soak saw 10,000 a version grow a
            # worker by ~17 MiB), and the sets of values that repeat — what makes it pay — are few.
            if len(self.fingerprints) >= FINGERPRINTS_KEPT:
                self.fingerprints.clear()
            self.fingerprints[key] = digest
        return digest

    def _say(self, leaf: Leaf, result: bool | None, language: str, value: Any) -> str:
        try:
            key = (result, language, value)
            cached = leaf.said.get(key)
        except TypeError:  # an unhashable attribute value
            key, cached = None, None
        if cached is not None:
            return cached
        if result is True:
            text = say(leaf.message, language)
        elif result is False:
            text = say(leaf.failed, language) or f"Not met: {say(leaf.message, language)}"
        else:
            text = say(leaf.unknown, language) or f"Not known ({leaf.fact} is not recorded): {say(leaf.message, language)}"
        text = _fill(text, self.parameters, value)
        if key is not None and len(leaf.said) < MESSAGES_KEPT:
            leaf.said[key] = text
        return text

    def explain(self, results: list[bool | None], language: str) -> dict[str, Any]:
        """The determination's explanation: {target, rules}, each a tree of nodes (see _explain) or None:
        the target when the scheme names none, the rules for a subject outside the target group. Many
        subjects share their results, so each is built once (and must not be changed)."""
        key = (language, tuple(results))
        explained = self.explanations.get(key)
        if explained is not None:
            return explained
        if self.target is None:
            explained = {"target": None, "rules": _explain(self.root, results, True, self.parameters, language)}
        elif self.in_target(results) is False:
            explained = {"target": _explain(self.target, results, True, self.parameters, language), "rules": None}
        else:
            target, rules = _explain(self.whole, results, True, self.parameters, language)["children"]
            explained = {"target": target, "rules": rules}
        if len(self.explanations) >= FINGERPRINTS_KEPT:
            self.explanations.clear()
        self.explanations[key] = explained
        return explained

    def _outside(self, facts: dict[str, Any], language: str) -> Reason:
        """The one reason a subject outside the target group is given: whom the scheme is for."""
        target = self.target
        if isinstance(target, Leaf):
            value = facts.get(target.fact)
            return Reason(target.rule, ReasonResult.failed, self._say(target, False, language, value), {target.fact: _plain(value)})
        text = say(target.failed, language) or say(target.message, language)
        return Reason(target.rule or "target", ReasonResult.failed, _fill(text, self.parameters, None),
                      {leaf.fact: _plain(facts.get(leaf.fact)) for leaf in _leaves(target)})

    def evaluate(self, scheme_code: str, person_id, facts: dict[str, Any], language: str) -> Determination:
        params = self.parameters
        results = [leaf.test(facts) for leaf in self.leaves]
        if self.in_target(results) is False:
            return Determination(scheme_code=scheme_code, person_id=person_id, outcome=Outcome.not_eligible,
                                 rules_version=self.info.version, reasons=[self._outside(facts, language)],
                                 explanation=self.explain(results, language),
                                 input_fingerprint=self.input_fingerprint(facts, language))
        verdict = self.decide(results)
        reasons = []
        for leaf, result in zip(self.leaves, results):
            value = facts.get(leaf.fact)
            status = ReasonResult.passed if result is True else ReasonResult.failed if result is False else ReasonResult.unknown
            reasons.append(Reason(leaf.rule, status, self._say(leaf, result, language, value), {leaf.fact: _plain(value)}))
        if verdict is True:
            outcome = Outcome.eligible
        elif verdict is False:
            outcome = Outcome.not_eligible
        else:
            outcome = Outcome.needs_information
        missing: dict[str, None] = {}
        hints: list[str] = []
        if verdict is None:
            missing_facts(self.whole, results, missing)
        elif verdict is False:
            hints = self.hints(results, facts, language)
        benefit = self.benefit.estimate(facts, params, language) if self.benefit and verdict is True else None
        return Determination(scheme_code=scheme_code, person_id=person_id, outcome=outcome, rules_version=self.info.version,
                             reasons=reasons, missing_facts=list(missing), benefit=benefit, hints=hints,
                             explanation=self.explain(results, language),
                             input_fingerprint=self.input_fingerprint(facts, language))


    def hints(self, results: list[bool | None], facts: dict[str, Any], language: str) -> list[str]:
        """Near misses of a verdict that failed: each criterion with a hint whose passing alone would make it eligible."""
        hints = []
        for leaf in self.leaves:
            if leaf.hint and results[leaf.index] is False:
                trial = list(results)
                trial[leaf.index] = True
                if self.decide(trial) is True:
                    hints.append(_fill(say(leaf.hint, language), self.parameters, facts.get(leaf.fact)))
        return hints

    def say_again(self, reasons: list[Any], explanation: Any, language: str) -> dict[str, Any]:
        """A stored determination's words in another language, from what it recorded: each reason's rule,
        result and fact value, and the explanation's results for a subject outside the target group (whose
        reasons name the target only). Nothing is evaluated again: the verdict is the stored one. Reasons
        and explanation nodes are mappings or objects with the same fields (the API's models)."""
        recorded: dict[str, bool | None] = {}
        facts: dict[str, Any] = {}
        for reason in reasons:
            recorded[_field(reason, "rule")] = _FROM_RESULT.get(_field(reason, "result"))
            facts.update(_field(reason, "facts") or {})
        if explanation and any(leaf.rule not in recorded for leaf in self.leaves):
            _results_of(_field(explanation, "target"), recorded)  # outside the target group: its results
            _results_of(_field(explanation, "rules"), recorded)
        results = [recorded.get(leaf.rule) for leaf in self.leaves]
        by_rule = self.by_rule
        messages = []
        for reason in reasons:
            rule = _field(reason, "rule")
            leaf = by_rule.get(rule)
            if leaf is not None:
                value = (_field(reason, "facts") or {}).get(leaf.fact)
                messages.append(self._say(leaf, _FROM_RESULT.get(_field(reason, "result")), language, value))
            elif self.target is not None and rule in (self.target.rule, "target"):
                text = say(self.target.failed, language) or say(self.target.message, language)
                messages.append(_fill(text, self.parameters, None))
            else:
                messages.append(_field(reason, "message"))
        outside = self.in_target(results) is False
        return {
            "messages": messages,
            "hints": [] if outside or self.decide(results) is not False else self.hints(results, facts, language),
            "explanation": self.explain(results, language) if explanation else None,
            "benefit": (_fill(say(self.benefit.description, language), self.parameters, None)
                        if self.benefit and self.benefit.description else None),
        }


_FROM_RESULT = {ReasonResult.passed.value: True, ReasonResult.failed.value: False, ReasonResult.unknown.value: None}


def _field(node: Any, name: str) -> Any:
    return node.get(name) if isinstance(node, dict) else getattr(node, name, None)


def _results_of(node: Any, recorded: dict[str, bool | None]) -> None:
    if not node:
        return
    if _field(node, "op") is None and _field(node, "rule"):
        recorded[_field(node, "rule")] = _FROM_RESULT.get(_field(node, "result"))
    for child in _field(node, "children") or ():
        _results_of(child, recorded)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _leaves(node: Any) -> list[Leaf]:
    return [node] if isinstance(node, Leaf) else [leaf for child in node.children for leaf in _leaves(child)]


_RESULT = {True: ReasonResult.passed.value, False: ReasonResult.failed.value, None: ReasonResult.unknown.value}


def _explain(node: Any, results: list[bool | None], decisive: bool, params: dict[str, Any], language: str) -> dict[str, Any]:
    """A node of an explanation: its result and whether it is decisive, and for a group its children. A
    criterion (leaf) says only its rule: its message is the reason of that rule. Under a decisive group:
    - met `any`: the paths that are met; failed `all`: the criteria that failed;
    - met `all`, failed `any`, `not`: every child (each was needed, or every path failed);
    - unknown: the children that are unknown (what would settle it)."""
    result = combine(node, results)
    if isinstance(node, Leaf):
        return {"rule": node.rule, "result": _RESULT[result], "decisive": decisive}
    deciding = node.op == "any"  # the value of a child that settles the group alone

    def why(value: bool | None) -> bool:
        if node.op == "not":
            return True
        if result is None:
            return value is None
        return value is deciding if result is deciding else True

    explained: dict[str, Any] = {"op": node.op}
    if node.rule:
        explained["rule"] = node.rule
    text = say(node.failed, language) if result is False and node.failed else say(node.message, language)
    if text:
        explained["message"] = _fill(text, params, None)
    explained |= {"result": _RESULT[result], "decisive": decisive,
                  "children": [_explain(child, results, decisive and why(combine(child, results)), params, language)
                               for child in node.children]}
    return explained


def _describe_node(node: Any, params: dict[str, Any], language: str) -> dict[str, Any]:
    if isinstance(node, Leaf):
        spec = fact_spec(node.fact)
        operand = node.resolve(params)
        described = {"rule": node.rule, "fact": node.fact, "fact_description": spec.description if spec else None,
                     "operator": node.op, "value": [_plain(v) for v in operand] if isinstance(operand, list) else _plain(operand),
                     "message": _fill(say(node.message, language), params, None), "messages": node.message}
        if isinstance(node.operand, tuple):
            described["parameter"] = node.operand[1]
        if node.failed:
            described["failed"] = _fill(say(node.failed, language), params, None)
        if node.hint:
            described["hint"] = _fill(say(node.hint, language), params, None)
        if node.when_missing == "failed":
            described["when_missing"] = "failed"
        return described
    described: dict[str, Any] = {node.op: [_describe_node(c, params, language) for c in node.children]}
    if node.rule:
        described["rule"] = node.rule
    if node.message:
        described["message"] = _fill(say(node.message, language), params, None)
    if node.failed:
        described["failed"] = _fill(say(node.failed, language), params, None)
    return described


class RulesAdapter:
    """The built-in adapter for schemes whose rules are written in a data file."""

    adapter_type = "rules"

    def __init__(self, metadata: SchemeMetadata, versions: list[RulesVersion]):
        self._metadata = metadata
        self.versions = versions
        self._in_force: dict[date, RulesVersion | None] = {}

    @property
    def metadata(self) -> SchemeMetadata:
        return self._metadata

    def version_on(self, on: date) -> RulesVersion | None:
        try:
            return self._in_force[on]
        except KeyError:
            info = self._metadata.version_on(on)
            version = self._in_force[on] = next((v for v in self.versions if v.info is info), None)
            return version

    async def check(self, request: CheckRequest) -> list[Determination]:
        return self.check_now(request)

    def check_now(self, request: CheckRequest) -> list[Determination]:
        """Rules need no I/O: callers that batch (the re-screen) skip the event loop's overhead."""
        return self.check_subjects(request, None)

    def input_fingerprints(self, request: CheckRequest) -> list[tuple[Any, str | None]]:
        """(person id or None for the household, input fingerprint) of each subject: a re-screen evaluates
        only those whose fingerprint differs from their latest determination's. None when no version is
        in force (nothing to compare: always evaluated)."""
        version = self.version_on(request.as_of)
        subjects = request.subjects(self._metadata.level)
        if version is None:
            return [(s.person_id, None) for s in subjects]
        return [(s.person_id, version.input_fingerprint(s.facts, request.language)) for s in subjects]

    def check_subjects(self, request: CheckRequest, person_ids: Any) -> list[Determination]:
        """The subjects whose person id (None for the household) is in `person_ids`; all when it is None."""
        version = self.version_on(request.as_of)
        code = self._metadata.code
        subjects = [s for s in request.subjects(self._metadata.level) if person_ids is None or s.person_id in person_ids]
        if version is None:
            return [Determination(code, s.person_id, Outcome.error, None,
                                  [Reason("in_force", ReasonResult.failed, f"No version of {code} is in force on {request.as_of}.")])
                    for s in subjects]
        return [version.evaluate(code, s.person_id, s.facts, request.language) for s in subjects]

    def say_again(self, rules_version: str | None, reasons: list[Any], explanation: Any,
                  language: str) -> dict[str, Any] | None:
        """A stored determination's words in `language` (RulesVersion.say_again), or None when its rules
        version is no longer in the file."""
        version = next((v for v in self.versions if v.info.version == rules_version), None)
        return version.say_again(reasons, explanation, language) if version is not None else None

    def describe(self, language: str = "en") -> dict[str, Any]:
        return {
            "versions": [
                {"version": v.info.version, "effective_from": v.info.effective_from, "effective_to": v.info.effective_to,
                 "parameters": [{"name": k, "value": _plain(val), **v.parameter_notes.get(k, {})} for k, val in v.parameters.items()],
                 "target": _describe_node(v.target, v.parameters, language) if v.target is not None else None,
                 "rules": _describe_node(v.root, v.parameters, language),
                 "benefit": None if v.benefit is None else {
                     "currency": v.benefit.currency, "frequency": v.benefit.frequency,
                     "description": _fill(say(v.benefit.description, language) or "", v.parameters, None) or None,
                     "estimated": v.benefit.amount is not None}}
                for v in self.versions
            ]
        }

    def health(self) -> SchemeHealth | None:
        return None

    @classmethod
    def from_definition(cls, doc: LDict, *, source: str, settings: Any = None) -> RulesAdapter:
        where = DefinitionFile(source)
        raw_versions = doc.get("versions")
        if not isinstance(raw_versions, LList) or not raw_versions:
            raise where.fail("a rules scheme needs 'versions': a list with at least one version", doc, "versions" if "versions" in doc else None)
        versions = [_parse_version(raw, where, raw_versions, i) for i, raw in enumerate(raw_versions)]
        seen: set[str] = set()
        for i, version in enumerate(versions):
            if version.info.version in seen:
                raise where.fail(f"version '{version.info.version}' is given twice", raw_versions, i)
            seen.add(version.info.version)
        facts = sorted(set().union(*(v.facts for v in versions)))
        metadata = parse_metadata(doc, where, adapter="rules", facts=tuple(facts),
                                  versions=tuple(v.info for v in versions))
        return cls(metadata, versions)


def _parse_version(raw: Any, where: DefinitionFile, parent: LList, index: int) -> RulesVersion:
    if not isinstance(raw, LDict):
        raise where.fail("a version is a mapping (version, effective_from, parameters, rules, benefit)", parent, index)
    allowed = {"version", "effective_from", "effective_to", "parameters", "target", "rules", "benefit", "note"}
    for key in raw:
        if key not in allowed:
            raise where.fail(f"unknown key '{key}' in a version", raw, key)
    info = parse_version_info(raw, where)
    params, notes = parse_parameters(raw.get("parameters"), where, raw)
    if "rules" not in raw:
        raise where.fail(f"version {info.version} needs 'rules'", raw)
    parser = RuleParser(where, params)
    # The target's criteria come first among the reasons, as the first condition of the verdict.
    target = parser.node(raw["target"], raw, "target") if "target" in raw else None
    if isinstance(target, Group) and target.message is None:
        raise where.fail("a target group needs a 'message': whom the scheme is for, in plain words", raw["target"])
    root = parser.node(raw["rules"], raw, "rules")
    facts = {leaf.fact for leaf in parser.leaves}
    benefit = None
    if "benefit" in raw:
        benefit = _parse_benefit(raw["benefit"], parser, raw)
        if benefit.amount:
            facts |= benefit.amount.facts
    digest = hashlib.sha256(f"{where.source}\n{raw!r}".encode()).hexdigest()
    return RulesVersion(info, params, notes, root, parser.leaves, benefit, facts, digest=digest, target=target)


def _parse_benefit(raw: Any, parser: RuleParser, parent: LDict) -> BenefitRule:
    where = parser.where
    if not isinstance(raw, LDict):
        raise where.fail("'benefit' is a mapping (amount, currency, frequency, description)", parent, "benefit")
    for key in raw:
        if key not in ("amount", "currency", "frequency", "description"):
            raise where.fail(f"unknown key '{key}' in benefit", raw, key)
    currency = raw.get("currency", "KHR")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise where.fail("currency is a three-letter code such as KHR", raw, "currency")
    frequency = raw.get("frequency")
    if frequency is not None and frequency not in BenefitFrequency.__members__:
        raise where.fail(f"frequency must be one of {', '.join(BenefitFrequency.__members__)}", raw, "frequency")
    description = parse_messages(raw["description"], where, raw, "description", placeholders=set(parser.params)) if "description" in raw else None
    amount = Expression(raw["amount"], parser, raw, "amount") if "amount" in raw else None
    return BenefitRule(currency, BenefitFrequency(frequency) if frequency else None, description, amount)


