"""The design rules that can be checked from the source (issue 14; docs/development.md): no import
cycle among `app` modules, services free of the web framework, no private name used across modules,
no module over 600 lines, and office scoping in one place that every office-owned model goes through.

The figures come from scripts/architecture_report.py (the same code prints them for a person)."""

import importlib.util
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import sqlite

from app.errors import NotFound
from app.models import Base, Household
from app.principal import Principal
from app.services import scoping
from helpers import register

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("architecture_report", ROOT / "scripts" / "architecture_report.py")
report = importlib.util.module_from_spec(_spec)
sys.modules["architecture_report"] = report
_spec.loader.exec_module(report)

@pytest.fixture(scope="module")
def modules():
    return report.modules()


def test_no_import_cycle_among_app_modules(modules):
    # Function-level imports count too: one inside a function only hides a cycle.
    assert report.cycles(report.import_graph(modules)) == []


def test_services_import_neither_fastapi_nor_app_deps(modules):
    assert report.framework_in_services(modules) == []


def test_no_private_name_is_used_across_modules(modules):
    assert report.private_imports(modules) == []


def test_no_module_is_over_600_lines(modules):
    assert [(name, lines) for name, lines in report.long_modules(modules)] == []


def test_the_report_sees_what_it_is_meant_to(tmp_path, monkeypatch):
    """The checks find a planted cycle, a service importing FastAPI and a private import."""
    package = tmp_path / "app"
    (package / "services").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "services" / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from app import b\n")
    (package / "b.py").write_text("from app.a import f as _f\nfrom app.a import _hidden\n")
    (package / "services" / "s.py").write_text("from fastapi import Depends\n")
    monkeypatch.setattr(report, "ROOT", tmp_path)
    monkeypatch.setattr(report, "APP", package)
    planted = report.modules()
    assert report.cycles(report.import_graph(planted)) == [["app.a", "app.b"]]
    assert report.framework_in_services(planted) == ["app.services.s imports fastapi"]
    assert report.private_imports(planted) == ["app.b imports app.a._hidden"]


def _as(account, world) -> Principal:
    return Principal(id=account.id, username=account.username, role=account.role,
                     office_id=world.office_ids.get(account.office_code), office_code=account.office_code,
                     scheme_code=account.scheme_code)


def _office_owned_models() -> list[type]:
    return sorted((m.class_ for m in Base.registry.mappers if "office_id" in m.class_.__table__.c),
                  key=lambda c: c.__name__)


def test_every_office_owned_model_is_scoped_by_the_one_rule(world):
    """Any model with an office_id column gets the rule from `scoping.scoped`, with nothing of its own:
    staff see their office's rows only, an admin every office's."""
    models = _office_owned_models()
    assert {"Household", "Person", "Case", "Application", "Referral", "FollowUp", "Grievance"} <= {m.__name__ for m in models}
    for model in models:
        clerk = str(scoping.scoped(select(model), model, _as(world.clerk_a, world)).compile(dialect=sqlite.dialect()))
        admin = str(scoping.scoped(select(model), model, _as(world.admin, world)).compile(dialect=sqlite.dialect()))
        assert f"WHERE {model.__table__.name}.office_id = ?" in clerk, model
        assert "WHERE" not in admin, model


async def test_a_new_office_owned_resource_needs_no_scoping_code(client, app, world):
    """What a new resource's service writes to load one record: `load_scoped(session, actor, Model, id,
    missing=...)`. Another office's record is "not found" exactly like a missing one; an admin sees it."""
    household_id = uuid.UUID((await register(client, world.clerk_a))["id"])
    async with app.state.sessionmaker() as session:
        found = await scoping.load_scoped(session, _as(world.clerk_a, world), Household, household_id, missing="No such thing.")
        assert found.id == household_id
        assert (await scoping.load_scoped(session, _as(world.admin, world), Household, household_id, missing="x")).id == found.id
        with pytest.raises(NotFound) as elsewhere:
            await scoping.load_scoped(session, _as(world.clerk_b, world), Household, household_id, missing="No such thing.")
        assert elsewhere.value.detail == "No such thing."
