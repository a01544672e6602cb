"""The rule tree of a rules file: `all` / `any` / `not` groups and leaves comparing one fact with a value,
parsed from the file (`RuleParser`, checked against the fact catalogue) and evaluated in three-valued
logic (`combine`, or `compile_tree` for the hot path); and the benefit amounts' small arithmetic
(`Expression`). app/schemes/rules.py builds a scheme's versions and verdicts from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.schemes.base import Messages
from app.schemes.definition import RULE_ID, DefinitionFile, parse_messages
from app.schemes.facts import FactSpec, fact_spec
from app.schemes.yamlfile import LDict, LList

OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "between")
_ORDERED = {"lt", "le", "gt", "ge", "between"}


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


def combine(node: Any, results: list[bool | None]) -> bool | None:
    if isinstance(node, Leaf):
        return results[node.index]
    if node.op == "not":
        inner = combine(node.children[0], results)
        return None if inner is None else not inner
    values = [combine(child, results) for child in node.children]
    if node.op == "all":
        if False in values:
            return False
        return None if None in values else True
    if True in values:
        return True
    return None if None in values else False


def compile_tree(node: Any):
    """The tree as nested closures over the leaves' results: the same logic as combine, without
    walking the tree's objects on every screening."""
    if isinstance(node, Leaf):
        index = node.index
        return lambda results: results[index]
    children = [compile_tree(child) for child in node.children]
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


def missing_facts(node: Any, results: list[bool | None], out: dict[str, None]) -> None:
    """The facts of the unknown leaves that keep this node unknown."""
    if combine(node, results) is not None:
        return
    if isinstance(node, Leaf):
        out[node.fact] = None
        return
    for child in node.children:
        missing_facts(child, results, out)


class RuleParser:
    def __init__(self, where: DefinitionFile, params: dict[str, Any], *, messages_required: bool = True):
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
        if not isinstance(rule, str) or not RULE_ID.match(rule):
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
        message, failed = (parse_messages(raw[k], self.where, raw, k, placeholders=set(self.params)) if k in raw else None
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
            message = parse_messages(raw["message"], self.where, raw, "message", placeholders=placeholders)
        elif self.messages_required:
            raise self.where.fail(f"rule '{rule}' needs a 'message' (what the rule checks, in plain words)", raw)
        else:
            message = {"en": rule.replace("_", " ")}
        extra = {k: parse_messages(raw[k], self.where, raw, k, placeholders=placeholders) if k in raw else None
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


class Expression:
    """number | {param: p} | {fact: f} | {sum|product|min|max: [...]} | {lookup: {fact, table, default}}
    | {if: <rule>, then: e, else: e}. None anywhere (a fact not recorded) makes the amount unknown."""

    def __init__(self, raw: Any, parser: RuleParser, parent: Any, key: Any):
        self.facts: set[str] = set()
        self.run = self.compile(raw, parser, parent, key)

    def compile(self, raw: Any, parser: RuleParser, parent: Any, key: Any):
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
            sub = RuleParser(where, parser.params, messages_required=False)
            condition = sub.node(raw["if"], raw, "if")
            self.facts.update(leaf.fact for leaf in sub.leaves)
            then = self.compile(raw["then"], parser, raw, "then")
            otherwise = self.compile(raw["else"], parser, raw, "else")
            leaves = sub.leaves

            def choose(facts, params):
                verdict = combine(condition, [leaf.test(facts, params) for leaf in leaves])
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
