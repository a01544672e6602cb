"""The rules adapter: a scheme's eligibility written as data, checked here.

A rules file holds effective-dated versions; each version has parameters (the figures, some of them
UNVERIFIED and so kept out of the code), a rule tree and an optional benefit. The tree is made of
`all` / `any` / `not` and leaves that compare one named fact with a value (eq, ne, lt, le, gt, ge, in,
between). Each leaf carries its plain-language message keyed by language (English required), so
Khmer and French can be added to the files without touching this engine. Nothing is evaluated as
code: the file is parsed into the small tree below and checked against the fact catalogue when it is
loaded, so a broken file fails at start-up with its line, not at the first screening.

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
    SchemeDefinitionError,
    SchemeHealth,
    SchemeLevel,
    SchemeMetadata,
    SchemeVersion,
    say,
)
from app.schemes.facts import ATTRIBUTE_PREFIX, FactSpec, fact_spec
from app.schemes.yamlfile import LDict, LList
from app.vocabulary import BenefitFrequency, Outcome, SchemeKind

OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "between")
_ORDERED = {"lt", "le", "gt", "ge", "between"}
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_RULE_ID = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")

# Per rules version and per rule: how many input fingerprints and filled-in messages are remembered.
FINGERPRINTS_KEPT = 1_024
MESSAGES_KEPT = 128


class _Where:
    """Where in which file: turns a problem into a SchemeDefinitionError with the line."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, message: str, node: Any = None, key: Any = None) -> SchemeDefinitionError:
        line = None
        if isinstance(node, LDict):
            line = node.line_of(key) if key is not None else node.line
        elif isinstance(node, LList):
            line = node.line_of(key) if isinstance(key, int) else node.line
        return SchemeDefinitionError(message, source=self.source, line=line)


def _messages(value: Any, where: _Where, parent: Any, key: str, *, placeholders: set[str]) -> Messages:
    if isinstance(value, str):
        value = {"en": value}
    if not isinstance(value, dict) or not value:
        raise where.fail(f"'{key}' must be a text or a mapping of language to text", parent, key)
    if "en" not in value:
        raise where.fail(f"'{key}' needs an English ('en') text", parent, key)
    for language, text in value.items():
        # A plain text has no lines of its own: point at the key that holds it.
        node, at = (value, language) if isinstance(value, LDict) else (parent, key)
        if not isinstance(language, str) or not _LANGUAGE.match(language):
            raise where.fail(f"'{language}' is not a language code (en, km, fr...)", node, at)
        if not isinstance(text, str) or not text.strip() or len(text) > 500:
            raise where.fail(f"the '{language}' text of '{key}' must be 1 to 500 characters", node, at)
        for name in _PLACEHOLDER.findall(text):
            if name not in placeholders:
                raise where.fail(f"the message names {{{name}}}, which is neither a parameter nor 'value'", node, at)
    return {str(k): v for k, v in value.items()}


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

    return _PLACEHOLDER.sub(lambda m: show(value if m.group(1) == "value" else params.get(m.group(1))), template)


# ---- the rule tree -------------------------------------------------------------------------------


@dataclass(slots=True)
class Leaf:
    rule: str
    fact: str
    op: str
    operand: Any  # a literal, a ("param", name) reference, or for between/in a list of those
    message: Messages
    failed: Messages | None
    unknown: Messages | None
    hint: Messages | None
    when_missing: str  # unknown | failed
    index: int = 0
    value: Any = None  # the operand with its parameters filled in (a version's parameters are fixed)
    said: dict = field(default_factory=dict)  # (result, language, fact value) -> message, filled as met

    def resolve(self, params: dict[str, Any]) -> Any:
        def one(x):
            return params[x[1]] if isinstance(x, tuple) else x

        if isinstance(self.operand, list):
            return [one(x) for x in self.operand]
        return one(self.operand)

    def test(self, facts: dict[str, Any], params: dict[str, Any] | None = None) -> bool | None:
        value = facts.get(self.fact)
        if value is None:
            return False if self.when_missing == "failed" else None
        operand = self.value
        op = self.op
        try:
            if op == "eq":
                return value == operand
            if op == "ne":
                return value != operand
            if op == "lt":
                return value < operand
            if op == "le":
                return value <= operand
            if op == "gt":
                return value > operand
            if op == "ge":
                return value >= operand
            if op == "in":
                return value in operand
            return operand[0] <= value <= operand[1]  # between, inclusive
        except TypeError:  # an attribute of the wrong type: cannot tell
            return None


@dataclass(slots=True)
class Group:
    op: str  # all | any | not
    children: list[Any]
    rule: str | None = None
    message: Messages | None = None
    failed: Messages | None = None  # said instead of the message when the group is not met


def _combine(node: Any, results: list[bool | None]) -> bool | None:
    if isinstance(node, Leaf):
        return results[node.index]
    if node.op == "not":
        inner = _combine(node.children[0], results)
        return None if inner is None else not inner
    values = [_combine(child, results) for child in node.children]
    if node.op == "all":
        if False in values:
            return False
        return None if None in values else True
    if True in values:
        return True
    return None if None in values else False


def _compile(node: Any):
    """The tree as nested closures over the leaves' results: the same logic as _combine, without
    walking the tree's objects on every screening."""
    if isinstance(node, Leaf):
        index = node.index
        return lambda results: results[index]
    children = [_compile(child) for child in node.children]
    if node.op == "not":
        inner = children[0]

        def negate(results):
            value = inner(results)
            return None if value is None else not value

        return negate
    wanted = node.op == "any"  # any: the first True decides; all: the first False decides

    def combine(results):
        unknown = False
        for child in children:
            value = child(results)
            if value is wanted:
                return wanted
            if value is None:
                unknown = True
        return None if unknown else not wanted

    return combine


def _missing(node: Any, results: list[bool | None], out: dict[str, None]) -> None:
    """The facts of the unknown leaves that keep this node unknown."""
    if _combine(node, results) is not None:
        return
    if isinstance(node, Leaf):
        out[node.fact] = None
        return
    for child in node.children:
        _missing(child, results, out)


class _Parser:
    def __init__(self, where: _Where, params: dict[str, Any], *, messages_required: bool = True):
        self.where = where
        self.params = params
        self.leaves: list[Leaf] = []
        self.rule_ids: set[str] = set()
        self.messages_required = messages_required

    def node(self, raw: Any, parent: Any, key: Any) -> Any:
        if not isinstance(raw, LDict):
            raise self.where.fail("a rule must be a mapping (all, any, not, or a fact comparison)", parent, key)
        groups = [k for k in ("all", "any", "not") if k in raw]
        if len(groups) > 1:
            raise self.where.fail(f"a rule has one of all/any/not, not {' and '.join(groups)}", raw)
        if groups:
            return self.group(raw, groups[0])
        if "fact" in raw:
            return self.leaf(raw)
        raise self.where.fail("a rule needs 'all', 'any', 'not', or a 'fact' with a comparison", raw)

    def _rule_id(self, raw: LDict, *, required: bool) -> str | None:
        rule = raw.get("rule")
        if rule is None:
            if required:
                raise self.where.fail("a comparison needs a 'rule' name (e.g. idpoor_card)", raw)
            return None
        if not isinstance(rule, str) or not _RULE_ID.match(rule):
            raise self.where.fail(f"rule name {rule!r} must be lower-case letters, digits and _", raw, "rule")
        if rule in self.rule_ids:
            raise self.where.fail(f"rule name '{rule}' is used twice in this version", raw, "rule")
        self.rule_ids.add(rule)
        return rule

    def group(self, raw: LDict, op: str) -> Group:
        allowed = {op, "rule", "message", "failed"}
        for key in raw:
            if key not in allowed:
                raise self.where.fail(f"unknown key '{key}' in an '{op}' rule", raw, key)
        rule = self._rule_id(raw, required=False)
        message, failed = (_messages(raw[k], self.where, raw, k, placeholders=set(self.params)) if k in raw else None
                           for k in ("message", "failed"))
        body = raw[op]
        if op == "not":
            return Group(op, [self.node(body, raw, op)], rule, message, failed)
        if not isinstance(body, LList) or not body:
            raise self.where.fail(f"'{op}' needs a non-empty list of rules", raw, op)
        return Group(op, [self.node(child, body, i) for i, child in enumerate(body)], rule, message, failed)

    def leaf(self, raw: LDict) -> Leaf:
        allowed = {"rule", "fact", "message", "failed", "unknown", "hint", "when_missing", *OPERATORS}
        for key in raw:
            if key not in allowed:
                hint = f" (comparisons are {', '.join(OPERATORS)})" if key not in ("all", "any", "not") else ""
                raise self.where.fail(f"unknown key '{key}' in a comparison{hint}", raw, key)
        rule = self._rule_id(raw, required=self.messages_required) or f"condition_{len(self.leaves) + 1}"
        fact = raw["fact"]
        spec = fact_spec(fact) if isinstance(fact, str) else None
        if spec is None:
            raise self.where.fail(f"unknown fact {fact!r} (see `guichet schemes facts` for the catalogue)", raw, "fact")
        ops = [k for k in OPERATORS if k in raw]
        if len(ops) != 1:
            raise self.where.fail(f"a comparison has exactly one of {', '.join(OPERATORS)}; found {len(ops)}", raw)
        op = ops[0]
        operand = self.operand(raw, op, spec)
        placeholders = set(self.params) | {"value"}
        if "message" in raw:
            message = _messages(raw["message"], self.where, raw, "message", placeholders=placeholders)
        elif self.messages_required:
            raise self.where.fail(f"rule '{rule}' needs a 'message' (what the rule checks, in plain words)", raw)
        else:
            message = {"en": rule.replace("_", " ")}
        extra = {k: _messages(raw[k], self.where, raw, k, placeholders=placeholders) if k in raw else None
                 for k in ("failed", "unknown", "hint")}
        when_missing = raw.get("when_missing", "unknown")
        if when_missing not in ("unknown", "failed"):
            raise self.where.fail("when_missing is 'unknown' (the default) or 'failed'", raw, "when_missing")
        leaf = Leaf(rule, fact, op, operand, message, extra["failed"], extra["unknown"], extra["hint"], when_missing,
                    index=len(self.leaves))
        leaf.value = leaf.resolve(self.params)
        if op == "in":
            leaf.value = tuple(leaf.value)
        self.leaves.append(leaf)
        return leaf

    def operand(self, raw: LDict, op: str, spec: FactSpec) -> Any:
        value = raw[op]
        if op in ("in", "between"):
            if isinstance(value, LDict):
                items = [self.reference(value, raw, op)]
                resolved = self.params[items[0][1]]
                if not isinstance(resolved, list):
                    raise self.where.fail(f"parameter '{items[0][1]}' must be a list for '{op}'", raw, op)
                if op == "between" and len(resolved) != 2:
                    raise self.where.fail("'between' needs two bounds [low, high]", raw, op)
                for item in resolved:
                    self.check_value(item, spec, op, raw)
                return items[0]
            if not isinstance(value, LList) or not value:
                raise self.where.fail(f"'{op}' needs a list", raw, op)
            if op == "between" and len(value) != 2:
                raise self.where.fail("'between' needs two bounds [low, high]", raw, op)
            items = [self.reference(v, raw, op) if isinstance(v, LDict) else v for v in value]
            for item in items:
                self.check_value(self.params[item[1]] if isinstance(item, tuple) else item, spec, op, raw)
            if op == "between":
                low, high = (self.params[i[1]] if isinstance(i, tuple) else i for i in items)
                if low > high:
                    raise self.where.fail(f"'between' bounds are reversed: {low} > {high}", raw, op)
            return list(items)
        if isinstance(value, LDict):
            ref = self.reference(value, raw, op)
            self.check_value(self.params[ref[1]], spec, op, raw)
            return ref
        self.check_value(value, spec, op, raw)
        return value

    def reference(self, value: LDict, raw: LDict, op: str) -> tuple[str, str]:
        if set(value) != {"param"} or not isinstance(value["param"], str):
            raise self.where.fail("a value is a literal or {param: NAME}", raw, op)
        if value["param"] not in self.params:
            raise self.where.fail(f"unknown parameter '{value['param']}' (declare it under 'parameters')", raw, op)
        return ("param", value["param"])

    def check_value(self, value: Any, spec: FactSpec, op: str, raw: LDict) -> None:
        bad = None
        if spec.type == "integer":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                bad = "a number"
        elif spec.type == "boolean":
            if not isinstance(value, bool):
                bad = "true or false"
            elif op in _ORDERED:
                bad = "compared with eq or ne only"
        elif spec.type == "date":
            if not isinstance(value, date):
                bad = "a date (YYYY-MM-DD)"
        elif spec.type == "text":
            if not isinstance(value, str):
                bad = "a text"
            elif spec.values and value not in spec.values:
                bad = f"one of {', '.join(spec.values)}"
        elif isinstance(value, (LDict, LList)):
            bad = "a plain value"
        if bad:
            raise self.where.fail(f"{spec.name} {op} {value!r}: the value must be {bad}", raw, op)


# ---- benefit amounts: a tiny arithmetic over facts and parameters -----------------------------------


class _Expression:
    """number | {param: p} | {fact: f} | {sum|product|min|max: [...]} | {lookup: {fact, table, default}}
    | {if: <rule>, then: e, else: e}. None anywhere (a fact not recorded) makes the amount unknown."""

    def __init__(self, raw: Any, parser: _Parser, parent: Any, key: Any):
        self.facts: set[str] = set()
        self.run = self.compile(raw, parser, parent, key)

    def compile(self, raw: Any, parser: _Parser, parent: Any, key: Any):
        where = parser.where
        if isinstance(raw, bool) or raw is None:
            raise where.fail("an amount is a number, a parameter, a fact or a formula", parent, key)
        if isinstance(raw, (int, float)):
            return lambda facts, params: raw
        if not isinstance(raw, LDict) or len([k for k in raw if k not in ("then", "else", "table", "default")]) != 1:
            raise where.fail("an amount formula has one operation: param, fact, sum, product, min, max, lookup or if", parent, key)
        if "param" in raw:
            name = parser.reference(raw, parent, key)[1]
            return lambda facts, params: params[name]
        if "fact" in raw:
            fact = raw["fact"]
            if not isinstance(fact, str) or fact_spec(fact) is None:
                raise where.fail(f"unknown fact {fact!r}", raw, "fact")
            self.facts.add(fact)
            return lambda facts, params: facts.get(fact)
        for op in ("sum", "product", "min", "max"):
            if op in raw:
                items = raw[op]
                if not isinstance(items, LList) or not items:
                    raise where.fail(f"'{op}' needs a list", raw, op)
                parts = [self.compile(item, parser, items, i) for i, item in enumerate(items)]
                return self._aggregate(op, parts)
        if "lookup" in raw:
            spec = raw["lookup"]
            if not isinstance(spec, LDict) or not isinstance(spec.get("table"), LDict) or "fact" not in spec:
                raise where.fail("lookup needs a 'fact' and a 'table'", raw, "lookup")
            fact = spec["fact"]
            if fact_spec(fact) is None:
                raise where.fail(f"unknown fact {fact!r}", spec, "fact")
            self.facts.add(fact)
            table = {str(k).lower() if isinstance(k, bool) else str(k): self.compile(v, parser, spec["table"], k)
                     for k, v in spec["table"].items()}
            default = self.compile(spec["default"], parser, spec, "default") if "default" in spec else None

            def lookup(facts, params):
                value = facts.get(fact)
                if value is None:
                    return None
                chosen = table.get(str(value).lower() if isinstance(value, bool) else str(value), default)
                return chosen(facts, params) if chosen else None

            return lookup
        if "if" in raw:
            if "then" not in raw or "else" not in raw:
                raise where.fail("'if' needs 'then' and 'else'", raw, "if")
            sub = _Parser(where, parser.params, messages_required=False)
            condition = sub.node(raw["if"], raw, "if")
            self.facts.update(leaf.fact for leaf in sub.leaves)
            then = self.compile(raw["then"], parser, raw, "then")
            otherwise = self.compile(raw["else"], parser, raw, "else")
            leaves = sub.leaves

            def choose(facts, params):
                verdict = _combine(condition, [leaf.test(facts, params) for leaf in leaves])
                if verdict is None:
                    return None
                return then(facts, params) if verdict else otherwise(facts, params)

            return choose
        raise where.fail(f"unknown amount operation '{next(iter(raw))}'", raw)

    @staticmethod
    def _aggregate(op: str, parts):
        def run(facts, params):
            values = [p(facts, params) for p in parts]
            if any(v is None for v in values):
                return None
            if op == "sum":
                return sum(values)
            if op == "product":
                result = 1
                for v in values:
                    result *= v
                return result
            return min(values) if op == "min" else max(values)

        return run


@dataclass(slots=True)
class BenefitRule:
    currency: str
    frequency: BenefitFrequency | None
    description: Messages | None
    amount: _Expression | None

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
        self.decide = _compile(self.whole)
        self.in_target = _compile(self.target) if self.target is not None else (lambda results: True)
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
            _missing(self.whole, results, missing)
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
    result = _combine(node, results)
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
                  "children": [_explain(child, results, decisive and why(_combine(child, results)), params, language)
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
        where = _Where(source)
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


def _parse_version(raw: Any, where: _Where, parent: LList, index: int) -> RulesVersion:
    if not isinstance(raw, LDict):
        raise where.fail("a version is a mapping (version, effective_from, parameters, rules, benefit)", parent, index)
    allowed = {"version", "effective_from", "effective_to", "parameters", "target", "rules", "benefit", "note"}
    for key in raw:
        if key not in allowed:
            raise where.fail(f"unknown key '{key}' in a version", raw, key)
    info = parse_version_info(raw, where)
    params, notes = _parse_parameters(raw.get("parameters"), where, raw)
    if "rules" not in raw:
        raise where.fail(f"version {info.version} needs 'rules'", raw)
    parser = _Parser(where, params)
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


def parse_version_info(raw: LDict, where: _Where) -> SchemeVersion:
    version = raw.get("version")
    if not isinstance(version, (str, int)) or not str(version).strip() or len(str(version)) > 40:
        raise where.fail("a version needs a 'version' label (up to 40 characters), e.g. \"2023-10\"", raw, "version" if "version" in raw else None)
    start, end = raw.get("effective_from"), raw.get("effective_to")
    if not isinstance(start, date):
        raise where.fail("'effective_from' must be a date (YYYY-MM-DD)", raw, "effective_from" if "effective_from" in raw else None)
    if end is not None and (not isinstance(end, date) or end < start):
        raise where.fail("'effective_to' must be a date on or after effective_from", raw, "effective_to")
    return SchemeVersion(str(version), start, end)


def _parse_parameters(raw: Any, where: _Where, parent: LDict) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    if raw is None:
        return {}, {}
    if not isinstance(raw, LDict):
        raise where.fail("'parameters' is a mapping of name to value", parent, "parameters")
    params, notes = {}, {}
    for name, value in raw.items():
        if not isinstance(name, str) or not _RULE_ID.match(name):
            raise where.fail(f"parameter name {name!r} must be lower-case letters, digits and _", raw, name)
        note: dict[str, Any] = {}
        if isinstance(value, LDict):
            for key in value:
                if key not in ("value", "unverified", "note", "source"):
                    raise where.fail(f"unknown key '{key}' in parameter '{name}' (value, unverified, note, source)", value, key)
            if "value" not in value:
                raise where.fail(f"parameter '{name}' needs a 'value'", raw, name)
            if "unverified" in value and not isinstance(value["unverified"], bool):
                raise where.fail("'unverified' is true or false", value, "unverified")
            note = {k: value[k] for k in ("unverified", "note", "source") if k in value}
            value = value["value"]
        if isinstance(value, LDict) or value is None:
            raise where.fail(f"parameter '{name}' must have a number, text, date, boolean or list value", raw, name)
        params[name] = list(value) if isinstance(value, LList) else value
        notes[name] = note
    return params, notes


def _parse_benefit(raw: Any, parser: _Parser, parent: LDict) -> BenefitRule:
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
    description = _messages(raw["description"], where, raw, "description", placeholders=set(parser.params)) if "description" in raw else None
    amount = _Expression(raw["amount"], parser, raw, "amount") if "amount" in raw else None
    return BenefitRule(currency, BenefitFrequency(frequency) if frequency else None, description, amount)


METADATA_KEYS = {"code", "name", "kind", "level", "agency", "legal_reference", "sources", "description",
                 "service_level_days", "adapter", "versions", "http", "dci"}


def parse_metadata(doc: LDict, where: _Where, *, adapter: str, facts: tuple[str, ...],
                   versions: tuple[SchemeVersion, ...]) -> SchemeMetadata:
    for key in doc:
        if key not in METADATA_KEYS:
            raise where.fail(f"unknown key '{key}' in a scheme (known: {', '.join(sorted(METADATA_KEYS))})", doc, key)
    code = doc.get("code")
    if not isinstance(code, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", code):
        raise where.fail("'code' is 1 to 40 letters, digits, '.', '_' or '-' (e.g. KH-HEF)", doc, "code" if "code" in doc else None)

    def text(key: str, limit: int) -> str:
        value = doc.get(key)
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            raise where.fail(f"'{key}' is a text of 1 to {limit} characters", doc, key if key in doc else None)
        return value.strip()

    kind = doc.get("kind")
    if kind not in SchemeKind.__members__:
        raise where.fail(f"'kind' is one of {', '.join(SchemeKind.__members__)}", doc, "kind" if "kind" in doc else None)
    level = doc.get("level", "person")
    if level not in SchemeLevel.__members__:
        raise where.fail("'level' is person or household", doc, "level")
    sources = doc.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, str) and s.strip() for s in sources):
        raise where.fail("'sources' is a list of texts (URLs, documents)", doc, "sources")
    sla = doc.get("service_level_days")
    if sla is not None and (isinstance(sla, bool) or not isinstance(sla, int) or not 0 < sla <= 3650):
        raise where.fail("'service_level_days' is a whole number of days (1 to 3650)", doc, "service_level_days")
    description = _messages(doc["description"], where, doc, "description", placeholders=set()) if "description" in doc else {}
    # The name and the agency are a text (English) or a mapping of language to text, like the messages;
    # `name` and `agency` stay the English ones (stored with each determination and application),
    # `names` and `agencies` hold every language.
    names = _messages(doc["name"], where, doc, "name", placeholders=set()) if isinstance(doc.get("name"), dict) else {}
    agencies = _messages(doc["agency"], where, doc, "agency", placeholders=set()) if isinstance(doc.get("agency"), dict) else {}
    return SchemeMetadata(
        code=code, name=names["en"].strip() if names else text("name", 200), names=names, kind=SchemeKind(kind),
        level=SchemeLevel(level), agency=agencies["en"].strip() if agencies else text("agency", 200), agencies=agencies,
        legal_reference=text("legal_reference", 500), adapter=adapter, facts=facts, versions=versions,
        sources=tuple(s.strip() for s in sources), description=description, service_level_days=sla, source_file=where.source,
    )
