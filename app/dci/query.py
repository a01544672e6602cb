"""DCI queries compiled to SQL conditions, over a whitelist of attributes.

Three query types: `idtype-value` ({type, value}), `predicate` (a list of {seq_num, expression1,
condition, expression2}; the items are ANDed in seq_num order) and `expression`, of which a safe subset
is taken: `{"value": {"expression": {"collection": "Group"|"Member", "query": Q}}}` where Q is a
Mongo-like document of `$and`, `$or`, `$not` and `{attribute: {$eq|$ne|$lt|$lte|$gt|$gte|$in: value}}`.
Nothing runs as code and no name reaches SQL: every attribute is looked up in ATTRIBUTES, and each is
guarded by the record field it would reveal, so a partner can only search on what it may see."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, not_, or_, select

from app.dci.envelope import RJCT_CRITERIA, RJCT_SORT, ItemRejected
from app.models import Household, Person
from app.vocabulary import SEVERE_DISABILITY_LEVELS

MAX_CONDITIONS = 20
MAX_DEPTH = 5
MAX_IN_VALUES = 100


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or len(str(value)) > 100:
        raise ValueError("a text of at most 100 characters")
    return str(value)


def _uuid(value: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(value)) if isinstance(value, str) else uuid.UUID("x")
    except ValueError:
        raise ValueError("an identifier Guichet gave (a UUID)") from None


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or abs(value) > 10**9:
        raise ValueError("a whole number")
    return value


def _date(value: Any) -> date:
    if not isinstance(value, str):
        raise ValueError("a date (YYYY-MM-DD)")
    return datetime.fromisoformat(value[:10]).date() if "T" in value else date.fromisoformat(value)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ValueError("true or false")


SEXES = {"male": "male", "female": "female", "other": "other", "m": "male", "f": "female", "1": "male", "2": "female"}


def _sex(value: Any) -> str:
    sex = SEXES.get(str(value).lower()) if isinstance(value, str | int) and not isinstance(value, bool) else None
    if sex is None:
        raise ValueError("male, female or other")
    return sex


def _severe_disability() -> ColumnElement:
    levels = [level.value for level in SEVERE_DISABILITY_LEVELS]
    return or_(*(getattr(Person, f"disability_{d}").in_(levels)
                 for d in ("seeing", "hearing", "walking", "remembering", "self_care", "communicating")))


def _group_size() -> ColumnElement:
    return select(func.count(Person.id)).where(Person.household_id == Household.id).scalar_subquery()


@dataclass(frozen=True)
class Attribute:
    owner: str  # "group" (a household column) or "member" (a person column)
    column: Callable[[], ColumnElement]
    parse: Callable[[Any], Any]
    field: str  # the record field it reveals: the partner's field scope must include it
    operators: frozenset[str] = frozenset({"eq", "in"})
    prefix: bool = False  # a geocode: "eq 1701" selects the district's villages


ORDERED = frozenset({"eq", "in", "lt", "le", "gt", "ge", "ne"})
ATTRIBUTES: dict[str, Attribute] = {
    "group_identifier": Attribute("group", lambda: Household.id, _uuid, "group_identifier"),
    "poverty_score": Attribute("group", lambda: func.coalesce(Household.idpoor_level, 0), _integer, "poverty_score", ORDERED),
    "idpoor_level": Attribute("group", lambda: func.coalesce(Household.idpoor_level, 0), _integer, "poverty_score", ORDERED),
    "group_size": Attribute("group", _group_size, _integer, "group_size", ORDERED),
    "location": Attribute("group", lambda: Household.village_code, _text, "place", prefix=True),
    "area_type": Attribute("group", lambda: Household.area_type, _text, "place"),
    "registration_date": Attribute("group", lambda: func.date(Household.created_at), _date, "registration_date", ORDERED),
    "member_identifier": Attribute("member", lambda: Person.id, _uuid, "member_identifier"),
    "national_id": Attribute("member", lambda: Person.national_id, _text, "member_identifier"),
    "UIN": Attribute("member", lambda: Person.national_id, _text, "member_identifier"),
    "NID": Attribute("member", lambda: Person.national_id, _text, "member_identifier"),
    "given_name": Attribute("member", lambda: Person.given_name, _text, "name"),
    "surname": Attribute("member", lambda: Person.family_name, _text, "name"),
    "sex": Attribute("member", lambda: Person.sex, _sex, "sex"),
    "birth_date": Attribute("member", lambda: Person.birth_date, _date, "birth_date", ORDERED),
    "YOB": Attribute("member", lambda: Person.birth_year, _integer, "birth_date", ORDERED),
    "birth_year": Attribute("member", lambda: Person.birth_year, _integer, "birth_date", ORDERED),
    "employment_status": Attribute("member", lambda: Person.employment_status, _text, "employment_status"),
    "relationship_head": Attribute("member", lambda: Person.relationship, _text, "relationship_head"),
    "is_disabled": Attribute("member", _severe_disability, _boolean, "is_disabled", frozenset({"eq"})),
}
# idtype-value types: the identifier a partner names, and the attribute it is.
ID_TYPES = {"UIN": "national_id", "NID": "national_id", "NATIONAL_ID": "national_id", "NATIONALID": "national_id",
            "HOUSEHOLD_ID": "group_identifier", "GROUP_ID": "group_identifier", "GROUP_IDENTIFIER": "group_identifier",
            "MEMBER_ID": "member_identifier", "PERSON_ID": "member_identifier", "MEMBER_IDENTIFIER": "member_identifier"}
SORTABLE = {"registration_date": ("group", lambda: Household.created_at), "poverty_score": ("group", lambda: Household.idpoor_level),
            "birth_date": ("member", lambda: Person.birth_date), "national_id": ("member", lambda: Person.national_id),
            "UIN": ("member", lambda: Person.national_id), "surname": ("member", lambda: Person.family_name)}
MONGO_OPERATORS = {"$eq": "eq", "$ne": "ne", "$lt": "lt", "$lte": "le", "$le": "le", "$gt": "gt", "$gte": "ge", "$ge": "ge",
                   "$in": "in"}


class Compiler:
    """Compiles one query for one entity ("Group": rows are households, "Member": persons joined to
    their household) and the partner's field scope."""

    def __init__(self, entity: str, fields: frozenset[str]):
        self.entity = entity
        self.fields = fields
        self.count = 0

    def fail(self, message: str) -> ItemRejected:
        return ItemRejected(RJCT_CRITERIA, message)

    def condition(self, name: Any, operator: Any, value: Any) -> ColumnElement:
        self.count += 1
        if self.count > MAX_CONDITIONS:
            raise self.fail(f"At most {MAX_CONDITIONS} conditions in one query.")
        attribute = ATTRIBUTES.get(name) if isinstance(name, str) else None
        if attribute is None:
            raise self.fail(f"Unknown attribute {str(name)[:60]!r}; known: {', '.join(sorted(ATTRIBUTES))}.")
        if attribute.field not in self.fields:
            raise self.fail(f"Attribute {name} is outside this client's field scope ({attribute.field}).")
        if operator not in attribute.operators:
            raise self.fail(f"Attribute {name} takes the operators {', '.join(sorted(attribute.operators))}.")
        try:
            if operator == "in":
                if not isinstance(value, list) or not 0 < len(value) <= MAX_IN_VALUES:
                    raise ValueError(f"a list of 1 to {MAX_IN_VALUES} values")
                values = [attribute.parse(v) for v in value]
            else:
                values = [attribute.parse(value)]
        except ValueError as exc:
            raise self.fail(f"The value of {name} must be {exc}.") from None
        column = attribute.column()
        if attribute.prefix:
            clause = or_(*(column.startswith(v, autoescape=True) for v in values))
            clause = not_(clause) if operator == "ne" else clause
        elif operator == "in":
            clause = column.in_(values)
        else:
            value = values[0]
            clause = {"eq": column == value, "ne": column != value, "lt": column < value, "le": column <= value,
                      "gt": column > value, "ge": column >= value}[operator]
            if attribute.parse is _boolean:
                clause = column if value else not_(column)
        if attribute.owner == "member" and self.entity == "Group":
            return exists(select(Person.id).where(Person.household_id == Household.id, clause))
        return clause

    # ---- the three query types ----

    def idtype_value(self, query: Any) -> ColumnElement:
        if not isinstance(query, dict) or set(query) - {"type", "value"} or "type" not in query or "value" not in query:
            raise self.fail("An idtype-value query is {\"type\": ..., \"value\": ...}.")
        kind = str(query["type"]).upper().replace("-", "_")[:40]
        if kind not in ID_TYPES:
            raise self.fail(f"Unknown identifier type {str(query['type'])[:40]!r}; known: {', '.join(sorted(ID_TYPES))}.")
        return self.condition(ID_TYPES[kind], "eq", query["value"])

    def predicate(self, query: Any) -> ColumnElement:
        if not isinstance(query, list) or not query:
            raise self.fail("A predicate query is a non-empty list of {seq_num, expression1, condition, expression2}.")
        clauses = []
        for item in sorted(query, key=lambda i: i.get("seq_num", 0) if isinstance(i, dict) and isinstance(i.get("seq_num"), int | float) else 0):
            if not isinstance(item, dict) or not isinstance(item.get("expression1"), dict):
                raise self.fail("Each predicate has an expression1.")
            first = self._expression(item["expression1"])
            condition = item.get("condition")
            second = item.get("expression2")
            if second is None:
                clauses.append(not_(first) if condition == "not" else first)
                continue
            if not isinstance(second, dict) or condition not in ("and", "or", "not"):
                raise self.fail("A predicate with expression2 joins them with condition and, or or not.")
            other = self._expression(second)
            clauses.append({"and": and_(first, other), "or": or_(first, other), "not": and_(first, not_(other))}[condition])
        return and_(*clauses)

    def _expression(self, expression: dict) -> ColumnElement:
        return self.condition(expression.get("attribute_name"), expression.get("operator"), expression.get("attribute_value"))

    def expression(self, query: Any) -> ColumnElement:
        value = query.get("value") if isinstance(query, dict) else None
        inner = value.get("expression") if isinstance(value, dict) else None
        if not isinstance(inner, dict) or not isinstance(inner.get("query"), dict):
            raise self.fail("An expression query is {\"type\": ..., \"value\": {\"expression\": {\"collection\", \"query\"}}}.")
        collection = inner.get("collection", self.entity)
        if collection != self.entity:
            raise self.fail(f"The expression's collection ({str(collection)[:20]}) differs from response_entity ({self.entity}).")
        return self._document(inner["query"], 1)

    def _document(self, document: Any, depth: int) -> ColumnElement:
        if depth > MAX_DEPTH:
            raise self.fail(f"Expressions nest at most {MAX_DEPTH} deep.")
        if not isinstance(document, dict) or not document:
            raise self.fail("An expression is a non-empty object.")
        clauses = []
        for key, value in document.items():
            if key in ("$and", "$or"):
                if not isinstance(value, list) or not value:
                    raise self.fail(f"{key} takes a non-empty list.")
                parts = [self._document(v, depth + 1) for v in value]
                clauses.append(and_(*parts) if key == "$and" else or_(*parts))
            elif key == "$not":
                clauses.append(not_(self._document(value, depth + 1)))
            elif isinstance(value, dict):
                for operator, operand in value.items():
                    if operator not in MONGO_OPERATORS:
                        raise self.fail(f"Unknown operator {str(operator)[:20]!r}; known: {', '.join(MONGO_OPERATORS)}.")
                    clauses.append(self.condition(key, MONGO_OPERATORS[operator], operand))
            else:
                clauses.append(self.condition(key, "eq", value))
        return and_(*clauses) if clauses else false()


def compile_query(query_type: str, query: Any, entity: str, fields: frozenset[str]) -> ColumnElement:
    compiler = Compiler(entity, fields)
    return {"idtype-value": compiler.idtype_value, "predicate": compiler.predicate, "expression": compiler.expression}[query_type](query)


def order_by(sort: list, entity: str, fields: frozenset[str]) -> list[ColumnElement]:
    """The requested order, then a stable one so that pages never overlap."""
    order = []
    for item in sort:
        known = SORTABLE.get(item.attribute_name)
        attribute = ATTRIBUTES.get(item.attribute_name)
        if known is None or (attribute is not None and attribute.field not in fields):
            raise ItemRejected(RJCT_SORT, f"Cannot sort on {item.attribute_name[:60]!r}; sortable: {', '.join(sorted(SORTABLE))}.")
        owner, column = known
        if owner == "member" and entity == "Group":
            raise ItemRejected(RJCT_SORT, f"Groups cannot be sorted on a member attribute ({item.attribute_name}).")
        expression = column()
        order.append(expression.desc() if item.sort_order == "desc" else expression.asc())
    stable = (Household.created_at, Household.id) if entity == "Group" else (Person.created_at, Person.id)
    return order + list(stable)
