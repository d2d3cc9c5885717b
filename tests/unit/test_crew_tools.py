"""The crew's new tools: pure functions first, then the thin BaseTool wrappers give the same answers."""

from __future__ import annotations

import json

import pytest

from dataeng_crew.errors import UnsafeArtifactError
from dataeng_crew.tools.project_files import read_project_file


def test_read_project_file_allows_project_files_and_refuses_secrets_and_escapes(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "a.sql").write_text("select 1 as x")
    (tmp_path / "profiles.yml").write_text("password: hunter2")
    (tmp_path / "models" / "link.sql").symlink_to(tmp_path / "profiles.yml")
    assert read_project_file(tmp_path, "models/a.sql") == "select 1 as x"
    for bad in ("profiles.yml", "../etc/passwd", "/etc/passwd", "models/link.sql", "models/run.py"):
        with pytest.raises(UnsafeArtifactError):
            read_project_file(tmp_path, bad)


def test_wrappers_answer_like_the_functions(tmp_path, sample_profile):
    from dataeng_crew.tools.crewai_tools import IntrospectTableTool, ReadProjectFileTool, tools_for

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "a.sql").write_text("select 1 as x")
    assert ReadProjectFileTool(project=str(tmp_path)).run(path="models/a.sql") == "select 1 as x"
    assert "error" in json.loads(ReadProjectFileTool(project=str(tmp_path)).run(path="profiles.yml"))
    orders = json.loads(IntrospectTableTool(profile=sample_profile).run(table="orders"))
    assert orders["row_count"] == sample_profile.table("orders").row_count
    assert "sample_values" not in orders["columns"][0]  # names and stats, not raw values
    assert {t.name for t in tools_for("transformer", sample_profile, tmp_path)} == {
        "introspect_table", "read_project_file", "check_sql", "dbt_model"}
    assert {t.name for t in tools_for("governance", sample_profile, None)} == {"introspect_table"}
