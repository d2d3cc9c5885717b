"""dbt project files from contracts: model and source yml (the project's test keys and layout), SQL, generic tests.

Rendering never knows which brain produced the contracts. A yml file that already exists is merged (our models
replace entries of the same name, others are kept); a table of a source the project already declares is added
to that source's own yml with a round-trip edit.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Sequence

import yaml

from dataeng_crew.contracts import ModelSpec, ProjectConventions, ProjectInventory, SourceSpec, TestSpec
from dataeng_crew.tools.ddl import ddl_files, primary_key
from dataeng_crew.tools.dialect import contract_type
from dataeng_crew.tools.project_files import add_source_tables
from dataeng_crew.tools.yml_edit import dump_yaml, edit_entries

CREW_MARKER = "dataeng_crew"  # in a generated model's config.meta: a later proposal may replace the model


def _generic_tests_dir() -> Path:
    """dataeng-crew's generic tests, shipped in the wheel under ``dataeng_crew/dbt_assets/generic``."""
    from importlib.resources import files

    return Path(str(files("dataeng_crew"))) / "dbt_assets" / "generic"



# The tool's generic tests and their equivalents in the packages a project may install (first installed wins):
# dbt-project-evaluator, dbt-score and reviewers know these; the tool's own test is written only where none exists.
PACKAGE_TESTS: dict[str, tuple[tuple[str, str, dict[str, str]], ...]] = {
    "crew_unique_combination": (("dbt_utils", "unique_combination_of_columns", {"columns": "combination_of_columns"}),
                                ("dbt_expectations", "expect_compound_columns_to_be_unique", {"columns": "column_list"})),
    "crew_values_at_least": (("dbt_utils", "accepted_range", {}),
                             ("dbt_expectations", "expect_column_values_to_be_between", {})),
}
GENERIC_TESTS_FILE = "dataeng_crew_tests.sql"


def package_test(test: TestSpec, packages: Sequence[str] = ()) -> TestSpec:
    """``test`` as the equivalent test of an installed package (dbt_utils, dbt_expectations), else unchanged."""
    for package, name, renamed in PACKAGE_TESTS.get(test.name, ()):
        if package in packages:
            args = {renamed.get(k, k): v for k, v in test.arguments.items()}
            return test.model_copy(update={"name": f"{package}.{name}", "arguments": args})
    return test


def test_yaml(test: TestSpec, conventions: ProjectConventions | None = None,
              packages: Sequence[str] = ()) -> str | dict[str, Any]:
    """One generic test entry in the yml form the project's dbt understands (``arguments:`` only where supported),
    named as the installed package's equivalent where one exists."""
    test = package_test(test, packages)
    if conventions is None or conventions.test_arguments_key:
        return test.to_yaml()
    if not test.arguments and test.severity == "error":
        return test.name
    body: dict[str, Any] = dict(test.arguments)
    if test.severity != "error":
        body["config"] = {"severity": test.severity}
    return {test.name: body}


def _tests_key(conventions: ProjectConventions | None) -> str:
    return conventions.tests_key if conventions is not None else "data_tests"


def model_yaml(model: ModelSpec, dialect: str = "duckdb", conventions: ProjectConventions | None = None,
               packages: Sequence[str] = ()) -> dict[str, Any]:
    """The ``models:`` entry of one model (config, contract with types in ``dialect``, columns, data tests).

    Each fact is checked once: in a contracted model a required column is a ``not_null`` constraint (enforced as
    the table is built), not a test too; the primary key is both the contract's key and the ``unique`` +
    ``not_null`` tests dbt-project-evaluator and dbt-score look for. A model without a contract keeps its tests.
    On Spark the contract holds the types only: dbt-spark enforces ``not_null`` with ``ALTER TABLE ... SET NOT
    NULL``, which only Delta tables accept, so there those facts stay tests.
    """
    key = _tests_key(conventions)
    config: dict[str, Any] = {"materialized": model.materialization}
    if model.contract_enforced:
        config["contract"] = {"enforced": True}
    if model.materialization == "incremental" and model.contract_enforced:
        config["on_schema_change"] = "fail"  # dbt requires it for contracted incremental models
    if model.tags:
        config["tags"] = list(model.tags)
    config["meta"] = {**model.meta, CREW_MARKER: "generated"}  # marks a model a later proposal may replace
    if model.grants:
        config["grants"] = {k: list(v) for k, v in model.grants.items()}
    entry: dict[str, Any] = {"name": model.name, "description": model.description, "config": config}
    constrained = model.contract_enforced and dialect != "spark"
    contract_key = primary_key(model) if constrained else None
    if model.tests:
        entry[key] = [test_yaml(t, conventions, packages) for t in model.tests]
    columns = []
    for col in model.columns:
        c: dict[str, Any] = {"name": col.name}
        if col.description:
            c["description"] = col.description
        tests = col.tests
        if col.data_type and model.contract_enforced:
            c["data_type"] = contract_type(col.data_type, dialect)
            if col.name == contract_key:  # the physical contract, and the tests dbt tools look for on a key
                c["constraints"] = [{"type": "not_null"}, {"type": "primary_key"}]
            elif constrained and any(t.name == "not_null" for t in tests):
                c["constraints"] = [{"type": "not_null"}]
                tests = [t for t in tests if t.name != "not_null"]
        if col.meta:
            c["config"] = {"meta": dict(col.meta)}
        if col.tags:
            c.setdefault("config", {})["tags"] = list(col.tags)
        if tests:
            c[key] = [test_yaml(t, conventions, packages) for t in tests]
        columns.append(c)
    entry["columns"] = columns
    return entry


def source_table_yaml(source: SourceSpec, conventions: ProjectConventions | None = None,
                      packages: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The ``tables:`` entries of a source."""
    tables = []
    for t in source.tables:
        entry: dict[str, Any] = {"name": t.name, "description": t.description}
        if t.identifier:  # dbt wraps a quoted identifier in double quotes without escaping: escape it here
            entry["identifier"] = t.identifier.replace('"', '""')
            entry["quoting"] = {"identifier": True}
        if t.loaded_at_field:
            entry["loaded_at_field"] = t.loaded_at_field
        if t.freshness:
            entry["freshness"] = t.freshness
        if t.tests:
            entry[_tests_key(conventions)] = [test_yaml(x, conventions, packages) for x in t.tests]
        if t.columns:
            entry["columns"] = [{"name": c.name, **({"description": c.description} if c.description else {})}
                                for c in t.columns]
        tables.append(entry)
    return tables


def source_yaml(source: SourceSpec, conventions: ProjectConventions | None = None,
                packages: Sequence[str] = (), dialect: str = "duckdb") -> dict[str, Any]:
    """The ``sources:`` entry of one source (database pinned for slim CI; not on Spark, where dbt-spark refuses a
    database other than the schema: there the source resolves in the target's catalog, as in the DuckDB sandbox)."""
    database = {} if dialect == "spark" else {"database": source.database}
    return {"name": source.name, "description": source.description, **database,
            "schema": source.schema_name, "tables": source_table_yaml(source, conventions, packages)}


def _merge(existing: str | None, key: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge ``entries`` into an existing yml document under ``key``, replacing same-named ones."""
    doc: dict[str, Any] = {"version": 2}
    if existing:
        loaded = yaml.safe_load(existing) or {}
        if isinstance(loaded, dict):
            doc = loaded
            doc.setdefault("version", 2)
    current = [e for e in doc.get(key) or [] if isinstance(e, dict)]
    names = {e["name"] for e in entries}
    doc[key] = [e for e in current if e.get("name") not in names] + entries
    return doc


def generic_test_files(test_path: str = "tests") -> dict[str, str]:
    """dataeng-crew's own generic tests (no hub packages): one ``<test path>/generic/dataeng_crew_tests.sql``."""
    return {f"{test_path}/generic/{GENERIC_TESTS_FILE}": (_generic_tests_dir() / GENERIC_TESTS_FILE).read_text()}


def _uses_own_tests(sources: list[SourceSpec], models: list[ModelSpec], packages: Sequence[str]) -> bool:
    """Whether any test of the proposal stays one of the tool's own (no installed package has its equivalent)."""
    tests = [t for m in models for t in (*m.tests, *(t for c in m.columns for t in c.tests))]
    tests += [t for s in sources for table in s.tables for t in table.tests]
    return any(package_test(t, packages).name.startswith("crew_") for t in tests)


def model_yml_path(model: ModelSpec, inventory: ProjectInventory | None = None) -> str:
    """Where a model's yml goes, in the project's layout.

    The file already documenting it (a model dataeng-crew made before); in a project that keeps one properties
    file per folder, that folder's file (or a new one named as the project names them); else a file of its own
    next to the SQL, as dbt's style guide has it.
    """
    existing = inventory.model(model.name) if inventory is not None else None
    if existing is not None and existing.yml_file:
        return existing.yml_file
    if inventory is not None and inventory.conventions.yml_layout == "per_folder":
        return folder_yml_path(model.path, inventory)
    return model.path.removesuffix(".sql") + ".yml"


def folder_yml_path(sql_path: str, inventory: ProjectInventory) -> str:
    """The properties file documenting the models of ``sql_path``'s folder (the one most of them use), else a new
    file in that folder named as the project names its per-folder files (``_<folder>__models.yml`` without one)."""
    folder = str(PurePosixPath(sql_path).parent)
    in_folder = Counter(m.yml_file for m in inventory.models
                        if m.yml_file and str(PurePosixPath(m.path).parent) == folder
                        and str(PurePosixPath(m.yml_file).parent) == folder)
    if in_folder:
        return in_folder.most_common(1)[0][0]
    shared = Counter(m.yml_file for m in inventory.models if m.yml_file)
    names = Counter(PurePosixPath(f).name for f, n in shared.items() if n > 1)
    name = names.most_common(1)[0][0] if names else f"_{PurePosixPath(folder).name}__models.yml"
    return f"{folder}/{name}"


def render_project_files(
    sources: list[SourceSpec],
    models: list[ModelSpec],
    read_existing: Callable[[str], str | None] = lambda _path: None,
    dialect: str = "duckdb",
    inventory: ProjectInventory | None = None,
    ddl_dialects: Sequence[str] = (),
) -> dict[str, str]:
    """All files of a proposal, keyed by path relative to the dbt project root.

    New models are documented in the project's yml layout (:func:`model_yml_path`); an existing file keeps every
    line that is not a new model's entry. A table of a source the project already declares is added to that source's
    entry in its own yml file (round-trip edit: comments and order kept); new sources get a ``_<source>__sources.yml``.

    Args:
        sources: Sources to declare.
        models: Models to write.
        read_existing: Returns the current content of a project file (or None), for yml merging.
        dialect: Warehouse dialect of the contract types in the yml (the model SQL is the caller's).
        inventory: The user's project (paths, conventions, declared sources); None: dbt's style guide.
        ddl_dialects: Dialects to write DDL for (default: ``dialect`` only).

    Returns:
        ``{relative_path: content}``.
    """
    conventions = inventory.conventions if inventory is not None else None
    packages = inventory.packages if inventory is not None else []
    test_path = inventory.test_paths[0] if inventory is not None and inventory.test_paths else "tests"
    model_root = models[0].root if models else (inventory.model_paths[0] if inventory is not None else "models")
    files: dict[str, str] = {}
    declared = {s.name: s for s in inventory.sources} if inventory is not None else {}
    for source in sources:
        if source.name in declared and declared[source.name].file:
            path = declared[source.name].file
            current = files.get(path) or read_existing(path)
            if current is None:
                raise ValueError(f"{path} (declaring source {source.name}) is not in the project")
            files[path] = add_source_tables(current, source.name, source_table_yaml(source, conventions, packages))
            continue
        path = f"{model_root}/{source.folder}/_{source.name}__sources.yml"
        entry = source_yaml(source, conventions, packages, dialect)
        files[path] = dump_yaml(_merge(read_existing(path), "sources", [entry]))
    for model in models:
        files[model.path] = model.sql if model.sql.endswith("\n") else model.sql + "\n"
        path = model_yml_path(model, inventory)
        current = files.get(path) or read_existing(path)
        entry = model_yaml(model, dialect, conventions, packages)
        edited = edit_entries(current, "models", [entry]) if current else None  # the project's lines stay
        files[path] = edited or dump_yaml(_merge(current, "models", [entry]))
    legacy = read_existing(f"{test_path}/generic/test_crew_values_at_least.sql") is not None  # an older proposal's
    if _uses_own_tests(sources, models, packages) and not legacy:
        files.update(generic_test_files(test_path))
    files.update(ddl_files(models, ddl_dialects or [dialect]))  # the physical contract, the target's by default
    return files
