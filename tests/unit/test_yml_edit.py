"""Line edits of a project's properties file: new entries in the project's layout, every other line kept."""

from __future__ import annotations

import pytest
import yaml

from dataeng_crew.contracts import (
    ColumnSpec,
    InventoryModel,
    ModelSpec,
    ProjectConventions,
    ProjectInventory,
)
from dataeng_crew.revise import without_models
from dataeng_crew.tools.dbt_files import model_yml_path, render_project_files
from dataeng_crew.tools.yml_edit import edit_entries

SPACED = """\
version: 2

models:
  - name: customers
    # the project's own comment, kept
    description: "Customers, quoted as the project quotes"

    columns:
      - name: customer_id
        tests: [unique, not_null]

  - name: orders
    columns:
      - name: order_id
"""

INDENTLESS = """\
models:
- name: orders
  description: one row per order
sources:
- name: shop
  tables:
  - name: raw_orders
"""

NEW = {"name": "weekly_revenue", "description": "Weekly revenue.", "columns": [{"name": "week_start_date"}]}


@pytest.mark.parametrize("text", [SPACED, INDENTLESS, "version: 2\n", "version: 2\nmodels: []\n"])
def test_appended_entry_keeps_every_line_of_the_project(text):
    edited = edit_entries(text, "models", [NEW])
    if text.endswith("models: []\n"):  # a flow list cannot take a line edit: the caller rewrites the document
        assert edited is None
        return
    assert edited is not None
    doc = yaml.safe_load(edited)
    assert doc["models"][-1] == NEW
    before = yaml.safe_load(text)
    assert doc["models"][:-1] == (before.get("models") or [])
    assert {k: v for k, v in doc.items() if k != "models"} == {k: v for k, v in before.items() if k != "models"}
    rest = iter(edited.splitlines())
    assert all(line in rest for line in text.splitlines()), "a line of the project's file changed or moved"


def test_new_entry_follows_the_files_indent_and_spacing():
    edited = edit_entries(SPACED, "models", [NEW])
    assert edited.startswith(SPACED + "\n  - name: weekly_revenue\n    description: Weekly revenue.\n")
    indentless = edit_entries(INDENTLESS, "models", [NEW])
    assert "one row per order\n- name: weekly_revenue\n  description" in indentless


def test_replacing_and_dropping_an_entry_give_back_the_projects_file():
    added = edit_entries(SPACED, "models", [NEW])
    changed = edit_entries(added, "models", [{**NEW, "description": "Changed."}])
    assert changed.count("weekly_revenue") == 1 and "Changed." in changed and changed.startswith(SPACED)
    assert edit_entries(changed, "models", drops={"weekly_revenue"}) == SPACED
    assert without_models(changed, {"weekly_revenue"}) == SPACED  # what revise leaves of a shared file


def test_a_replaced_entry_in_the_middle_keeps_its_place():
    edited = edit_entries(SPACED, "models", [{"name": "customers", "description": "mine"}])
    assert [m["name"] for m in yaml.safe_load(edited)["models"]] == ["customers", "orders"]
    assert edited.endswith("  - name: customers\n    description: mine\n\n  - name: orders\n    columns:\n"
                           "      - name: order_id\n")


def _spec(path: str) -> ModelSpec:
    root, _, rest = path.partition("/")
    folder, _, file = rest.rpartition("/")
    return ModelSpec(name=file.removesuffix(".sql"), layer="marts", materialization="table", description="",
                     sql="select 1 as week_start_date", folder=folder, root=root,
                     columns=[ColumnSpec(name="week_start_date", data_type="date", description="The week.")])


def _inventory(models: list[tuple[str, str | None]], layout: str) -> ProjectInventory:
    return ProjectInventory(
        models=[InventoryModel(name=p.rsplit("/", 1)[-1].removesuffix(".sql"), path=p, layer="marts", alias="x",
                               yml_file=y) for p, y in models],
        name="p", conventions=ProjectConventions(yml_layout=layout))


@pytest.mark.parametrize("models, layout, new_path, expected", [
    # the folder's own file, as the project keeps one per folder
    ([("models/customers.sql", "models/schema.yml"), ("models/orders.sql", "models/schema.yml")], "per_folder",
     "models/weekly_revenue.sql", "models/schema.yml"),
    # a new folder: a new file named as the project names its per-folder files
    ([("models/core/a.sql", "models/core/schema.yml"), ("models/core/b.sql", "models/core/schema.yml")],
     "per_folder", "models/marts/fct_x.sql", "models/marts/schema.yml"),
    # no name to follow: dbt's style guide
    ([("models/core/a.sql", "models/core/_core__models.yml")], "per_folder", "models/marts/fct_x.sql",
     "models/marts/_marts__models.yml"),
    # a project with one file per model: one for the new model too
    ([("models/a.sql", "models/a.yml"), ("models/b.sql", "models/b.yml")], "per_model", "models/fct_x.sql",
     "models/fct_x.yml"),
])
def test_model_yml_path_follows_the_projects_layout(models, layout, new_path, expected):
    spec = _spec(new_path)
    assert spec.path == new_path
    assert model_yml_path(spec, _inventory(models, layout)) == expected


def test_rendered_files_add_the_model_to_the_folders_file():
    inventory = _inventory([("models/customers.sql", "models/schema.yml"), ("models/orders.sql", "models/schema.yml")],
                           "per_folder")
    spec = _spec("models/weekly_revenue.sql")
    files = render_project_files([], [spec], {"models/schema.yml": SPACED}.get, inventory=inventory)
    assert "models/weekly_revenue.yml" not in files
    assert files["models/schema.yml"].startswith(SPACED)
    assert [m["name"] for m in yaml.safe_load(files["models/schema.yml"])["models"]] == [
        "customers", "orders", "weekly_revenue"]


def test_a_file_kept_in_name_order_gets_the_entry_in_its_place():
    edited = edit_entries(SPACED, "models", [{"name": "daily_sales"}, {"name": "weekly_orders"}])
    assert [m["name"] for m in yaml.safe_load(edited)["models"]] == ["customers", "daily_sales", "orders",
                                                                     "weekly_orders"]
    assert "        tests: [unique, not_null]\n\n  - name: daily_sales\n\n  - name: orders\n" in edited
    unordered = SPACED.replace("customers", "zebras")
    assert [m["name"] for m in yaml.safe_load(edit_entries(unordered, "models", [{"name": "a"}]))["models"]] == [
        "zebras", "orders", "a"]
