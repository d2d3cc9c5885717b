"""dbt's JSON schemas read back from the cache validate exactly as the ones dbt builds, and are not built again.

Each run is a fresh Python process (this one may have built the schemas already), with a real ``dbt parse``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataeng_crew.tools import dbt_schemas

PARSE = """
import json, sys
from dbt_common import dataclass_schema
built = []
real = dataclass_schema.build_json_schema
dataclass_schema.build_json_schema = lambda cls, *a, **k: built.append(cls.__name__) or real(cls, *a, **k)
from dataeng_crew.tools.dbt_runner import dbt_environment, invoke
project = sys.argv[1]
result, _ = invoke(["parse"], ["parse", "--project-dir", project, "--profiles-dir", project, "--target-path",
                   project + "/target", "--log-path", project + "/logs", "--no-write-json"], None, False,
                   dbt_environment())
print(json.dumps({"success": result.success, "error": result.error, "built": built}))
"""


def _project(root: Path, project_yml_extra: str = "") -> Path:
    root.mkdir()
    (root / "models").mkdir()
    (root / "dbt_project.yml").write_text(f'name: tiny\nversion: "1.0"\nconfig-version: 2\nprofile: tiny\n'
                                          f'{project_yml_extra}')
    (root / "profiles.yml").write_text(f"tiny:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
                                       f"      path: {root}/tiny.duckdb\n")
    (root / "models" / "orders.sql").write_text("select 1 as order_id")
    (root / "models" / "orders.yml").write_text("models:\n  - name: orders\n    columns:\n      - name: order_id\n"
                                                "        data_tests: [unique, not_null]\n")
    return root


def _parse(project: Path, cache: Path) -> dict:
    env = {**os.environ, dbt_schemas.CACHE_ENV: str(cache)}
    out = subprocess.run([sys.executable, "-c", PARSE, str(project)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_schemas_are_built_once_then_read_back_and_still_reject_a_bad_project(tmp_path):
    cache = tmp_path / "cache"
    good = _project(tmp_path / "good")
    first = _parse(good, cache)
    assert first["success"] and len(first["built"]) >= 5  # Project, profile, credentials, node configs...
    files = list(cache.glob("dbt-schemas-*.json"))
    assert len(files) == 1 and "dbt.contracts.project.Project" in json.loads(files[0].read_text())

    second = _parse(good, cache)
    assert second["success"] and second["built"] == []  # every schema read back

    bad = _project(tmp_path / "bad", "quoting: 5\n")
    from_cache = _parse(bad, cache)
    built_fresh = _parse(bad, tmp_path / "empty-cache")
    assert not from_cache["success"] and from_cache["built"] == []
    assert "quoting" in from_cache["error"] and "not valid" in from_cache["error"]
    assert from_cache["error"].replace(str(bad), "") == built_fresh["error"].replace(str(bad), "")


def test_another_version_of_a_package_names_another_file(monkeypatch, tmp_path):
    monkeypatch.setenv(dbt_schemas.CACHE_ENV, str(tmp_path))
    before = dbt_schemas.cache_file()
    real = dbt_schemas.metadata.version
    monkeypatch.setattr(dbt_schemas.metadata, "version",
                        lambda name: "9.9.9" if name == "dbt-core" else real(name))
    assert dbt_schemas.cache_file() != before and dbt_schemas.cache_file().parent == tmp_path


def test_an_unreadable_cache_file_is_ignored(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    env_file = cache / dbt_schemas.cache_file().name  # same versions: same name under another folder
    env_file.write_text("{not json")
    out = _parse(_project(tmp_path / "p"), cache)
    assert out["success"] and out["built"]  # built as if there were no file, and the file written again
    assert json.loads(env_file.read_text())
