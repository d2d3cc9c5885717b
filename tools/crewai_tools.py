"""Thin CrewAI ``BaseTool`` wrappers over the pure tool functions.

Agents get these tools, never raw access. Each wrapper validates its arguments with a pydantic
``args_schema``, calls the pure function and returns JSON text. Importing this module imports
crewai (~2.5 s), so only the crew imports it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Type

from crewai.tools import BaseTool
from pydantic import BaseModel, Field

from dataeng_crew.errors import DataengCrewError
from dataeng_crew.contracts import ModelSpec
from dataeng_crew.tools.dbt_model import dbt_single_model
from dataeng_crew.tools.project_files import read_project_file
from dataeng_crew.tools.sqlcheck import check_compiled
from dataeng_crew.tools.warehouse import profile_warehouse


class ProfileWarehouseArgs(BaseModel):
    """Arguments of :class:`ProfileWarehouseTool`."""

    path: str = Field(description="Path of the DuckDB warehouse file.")
    sample_rows: int = Field(default=200_000, ge=100, le=5_000_000, description="Rows profiled per table at most.")


class ProfileWarehouseTool(BaseTool):
    """Profile every table of the warehouse (read-only, locked-down connection)."""

    name: str = "profile_warehouse"
    description: str = ("Profile the warehouse: tables, row counts, per-column null fraction, distinct counts, "
                        "min/max, sample values, candidate keys and foreign keys found by inclusion checks.")
    args_schema: Type[BaseModel] = ProfileWarehouseArgs

    def _run(self, path: str, sample_rows: int = 200_000) -> str:
        try:
            return profile_warehouse(Path(path), sample_rows=sample_rows).model_dump_json()
        except DataengCrewError as exc:
            return json.dumps({"error": str(exc)})


class CheckSqlArgs(BaseModel):
    """Arguments of :class:`CheckSqlTool`."""

    model: str = Field(description="Model name, for messages.")
    sql: str = Field(description="Compiled SQL (no Jinja).")
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema",
                                    description="{db: {schema: {table: {column: type}}}} the SQL may read.")
    expected_columns: list[str] | None = Field(default=None, description="Columns the model documents.")


class CheckSqlTool(BaseTool):
    """Check compiled SQL with sqlglot: one safe query, known tables and columns."""

    name: str = "check_sql"
    description: str = ("Check compiled model SQL with sqlglot: a single SELECT/WITH/UNION, no DDL/DML/commands or "
                        "file reads, every table and column known, output columns equal to the documented ones.")
    args_schema: Type[BaseModel] = CheckSqlArgs

    def _run(self, model: str, sql: str, schema: dict[str, Any] | None = None,
             expected_columns: list[str] | None = None, **kwargs: Any) -> str:
        schema = schema if schema is not None else kwargs.get("schema_", {})
        issues, outputs = check_compiled(model, sql, schema or {}, expected_columns)
        return json.dumps({"ok": not issues, "issues": [i.model_dump() for i in issues], "output_columns": outputs})


class TranspileSqlArgs(BaseModel):
    """Arguments of :class:`TranspileSqlTool`."""

    sql: str = Field(description="Model SQL written for DuckDB (Jinja limited to ref/source/config).")
    dialect: str = Field(description="Target warehouse dialect: postgres, snowflake, bigquery, databricks, spark or duckdb.")


class TranspileSqlTool(BaseTool):
    """Transpile DuckDB model SQL to another warehouse, with warnings for what is not faithful."""

    name: str = "transpile_sql"
    description: str = ("Translate DuckDB model SQL to the target warehouse dialect with sqlglot plus dataeng-crew's "
                        "rules; returns the SQL and a warning for every construct without a faithful translation.")
    args_schema: Type[BaseModel] = TranspileSqlArgs

    def _run(self, sql: str, dialect: str) -> str:
        from dataeng_crew.tools.dialect import transpile_model_sql

        try:
            out = transpile_model_sql(sql, dialect)
        except DataengCrewError as exc:
            return json.dumps({"error": str(exc)})
        return json.dumps({"sql": out.sql, "warnings": out.warnings})


class PublishPullRequestArgs(BaseModel):
    """Arguments of :class:`PublishPullRequestTool`."""

    repo: str = Field(description="GitHub repository, owner/name.")
    api_url: str = Field(default="https://api.github.com", description="GitHub API root.")
    branch: str = Field(description="Branch to create or move, e.g. dataeng-crew/daily-sales-mart.")
    title: str
    body: str = Field(description="Pull-request description (Markdown).")
    message: str = Field(description="Commit message.")
    files: dict[str, str] = Field(description="{repo-relative path: content}; all of them go in ONE commit.")
    approval_kinds: list[str] = Field(default_factory=list, description="governance / cost: adds needs-*-approval labels.")
    draft: bool = True
    reviewers: list[str] = Field(default_factory=list, description="user or org/team; default: CODEOWNERS.")


class PublishPullRequestTool(BaseTool):
    """Publish files as one commit on a GitHub branch and open or update its pull request (token: GITHUB_TOKEN)."""

    name: str = "publish_pull_request"
    description: str = ("Publish validated files as ONE commit on a GitHub branch (created, or moved to a fresh "
                        "commit on the base) and open or update its draft pull request with labels and reviewers.")
    args_schema: Type[BaseModel] = PublishPullRequestArgs

    def _run(self, repo: str, branch: str, title: str, body: str, message: str, files: dict[str, str],
             api_url: str = "https://api.github.com", approval_kinds: list[str] | None = None, draft: bool = True,
             reviewers: list[str] | None = None) -> str:
        import dataclasses

        from dataeng_crew.tools import github_pr

        options = github_pr.GithubOptions(repo=repo, api_url=api_url, draft=draft, reviewers=tuple(reviewers or ()))
        try:
            target = github_pr.GithubTarget(repo=repo, api_url=api_url.rstrip("/"))
            result = github_pr.publish(target, options, branch=branch, title=title, body=body, message=message,
                                       files=files, approval_kinds=approval_kinds or [])
        except DataengCrewError as exc:
            return json.dumps({"error": str(exc)})
        return json.dumps(dataclasses.asdict(result))


class IntrospectTableArgs(BaseModel):
    """Arguments of :class:`IntrospectTableTool`."""

    table: str = Field(description="Raw table name, e.g. orders.")


class IntrospectTableTool(BaseTool):
    """Columns, types, null fractions, keys and row count of one raw table (from the proposal's profile)."""

    name: str = "introspect_table"
    description: str = "Describe one raw table: columns with types, null fraction, distinct count, keys, row count."
    args_schema: Type[BaseModel] = IntrospectTableArgs
    profile: Any = None

    def _run(self, table: str) -> str:
        found = self.profile.table(table) if self.profile is not None else None
        if found is None:
            return json.dumps({"error": f"no table {table!r}"})
        return found.model_dump_json(exclude={"columns": {"__all__": {"sample_values", "top_values"}}})


class ReadProjectFileArgs(BaseModel):
    """Arguments of :class:`ReadProjectFileTool`."""

    path: str = Field(description="Path relative to the dbt project, e.g. models/staging/shop/stg_shop__orders.yml.")


class ReadProjectFileTool(BaseTool):
    """Read an existing file of the dbt project (models, tests, suites; never profiles)."""

    name: str = "read_project_file"
    description: str = "Read an existing dbt project file (models/, tests/, suites/, docs) by relative path."
    args_schema: Type[BaseModel] = ReadProjectFileArgs
    project: str = ""

    def _run(self, path: str) -> str:
        try:
            return read_project_file(Path(self.project), path)
        except (DataengCrewError, OSError) as exc:
            return json.dumps({"error": str(exc)})


class DbtModelArgs(BaseModel):
    """Arguments of :class:`DbtModelTool`."""

    model_json: str = Field(description="The ModelSpec JSON to try.")
    command: str = Field(default="compile", description="compile or build")


class DbtModelTool(BaseTool):
    """dbt compile/build of one model on a sandbox copy of the project and warehouse."""

    name: str = "dbt_model"
    description: str = ("Try one model (ModelSpec JSON) with dbt compile or build on a sandbox copy of the project "
                        "and warehouse; returns per-node status and messages.")
    args_schema: Type[BaseModel] = DbtModelArgs
    project: str = ""
    warehouse: str = ""
    sources: list[Any] = Field(default_factory=list)
    upstream: list[Any] = Field(default_factory=list)

    def _run(self, model_json: str, command: str = "compile") -> str:
        import tempfile

        try:
            model = ModelSpec.model_validate_json(model_json)
            with tempfile.TemporaryDirectory(prefix="dataeng-crew-tool-") as tmp:
                build = dbt_single_model(Path(self.project), Path(self.warehouse), model, self.sources,
                                         self.upstream, Path(tmp), "build" if command == "build" else "compile")
        except (DataengCrewError, ValueError) as exc:
            return json.dumps({"error": str(exc)[:1500]})
        return json.dumps({"success": build.success, "error": build.error,
                           "nodes": [{"id": n.unique_id, "status": n.status, "message": n.message} for n in build.nodes]})


def all_tools() -> list[BaseTool]:
    """Every tool the crew's agents may be given."""
    return [ProfileWarehouseTool(), CheckSqlTool(), IntrospectTableTool(), ReadProjectFileTool(), DbtModelTool(),
            TranspileSqlTool()]


def tools_for(role: str, profile: Any, project: Path | None) -> list[BaseTool]:
    """The tools one role gets: data roles introspect the profile, SQL writers check and try their SQL."""
    tools: list[BaseTool] = [IntrospectTableTool(profile=profile)]
    if project is not None:
        tools.append(ReadProjectFileTool(project=str(project)))
    if role in {"modeler", "transformer"}:
        tools.append(CheckSqlTool())
        if project is not None and profile is not None:
            tools.append(DbtModelTool(project=str(project), warehouse=profile.path))
    return tools
