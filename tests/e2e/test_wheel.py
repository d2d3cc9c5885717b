"""The built wheel, installed non-editable into a fresh venv and run from outside the repository:
`sample --init`, `propose` (deterministic brain) and a crew proposal with the scripted LLM.

To stay fast and offline, the fresh venv gets no dependencies of its own: the wheel is installed with
``--no-deps`` and a ``.pth`` line lends it the test venv's site-packages (where dataeng-crew itself is only
an editable finder, which a ``.pth`` path does not activate), so only the wheel's files provide
``dataeng_crew``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, git

pytestmark = pytest.mark.slow
ONE_NAMESPACE = {"dataeng_crew", "dataeng_crew-0.1.0.dist-info"}


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """Build the wheel, install it into a fresh venv; returns paths and the measured seconds per step."""
    root = tmp_path_factory.mktemp("wheel")
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    built = _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(root / "dist"), str(REPO), cwd=root)
    assert built.returncode == 0, built.stderr[-2000:]
    seconds["build wheel"] = time.perf_counter() - started
    wheel = next((root / "dist").glob("dataeng_crew-*.whl"))
    started = time.perf_counter()
    venv = root / "venv"
    assert _run(sys.executable, "-m", "venv", "--without-pip", str(venv), cwd=root).returncode == 0
    python = venv / "bin" / "python"
    purelib = _run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                   cwd=root).stdout.strip()
    Path(purelib, "_dataeng_crew_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = _run(sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel), cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    seconds["fresh venv + install"] = time.perf_counter() - started
    outside = root / "outside"
    outside.mkdir()
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": "",
           "DATAENG_CREW_CONFIG": str(outside / "no-config.yml")}
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "DATAENG_CREW_LLM", "DATAENG_CREW_LLM_BASE_URL"):
        env.pop(key, None)
    return {"wheel": wheel, "venv": venv, "python": python, "outside": outside, "env": env, "seconds": seconds}


def test_the_wheel_holds_one_namespace_and_every_runtime_file(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    assert {n.split("/")[0] for n in names} == ONE_NAMESPACE  # no top-level agents/ or tools/
    for needed in ("dataeng_crew/prompts/agents.yaml", "dataeng_crew/prompts/tasks.yaml",
                   "dataeng_crew/prompts/dbt_style.md", "dataeng_crew/prompts/governance_policy.md",
                   "dataeng_crew/templates/dataeng-crew-pr.yml", "dataeng_crew/sample_project/dbt_project.yml",
                   "dataeng_crew/sample_project/profiles.yml", "dataeng_crew/sample_project/governance.yml",
                   "dataeng_crew/dbt_assets/generic/dataeng_crew_tests.sql", "dataeng_crew/agents/crew.py",
                   "dataeng_crew/tools/git_local.py"):
        assert needed in names, needed
    where = _run(str(installed["python"]), "-c", "import dataeng_crew; print(dataeng_crew.__file__)\n"
                 "import importlib.util as u; print(u.find_spec('agents'), u.find_spec('tools'))",
                 cwd=installed["outside"], env=installed["env"])
    assert where.returncode == 0, where.stderr
    lines = where.stdout.split("\n")
    assert lines[0].startswith(str(installed["venv"])) and lines[1] == "None None"


def test_sample_init_then_propose_then_a_crew_proposal_from_outside_the_repository(installed):
    from tests.fakes.fake_llm_server import FakeLlmServer
    from tests.fakes.scripted_llm import good_answers, good_script

    from dataeng_crew.tools.warehouse import profile_warehouse

    env, outside, seconds = installed["env"], installed["outside"], installed["seconds"]
    started = time.perf_counter()
    done = _run("dataeng-crew", "sample", "--init", "demo", "--scale", "2000", cwd=outside, env=env)
    seconds["sample --init"] = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    demo = outside / "demo"
    assert git(demo, "status", "--porcelain") == "" and git(demo, "log", "--format=%s") == "Sample dbt project"

    started = time.perf_counter()
    done = _run("dataeng-crew", "propose", "daily_sales mart", "--json", cwd=demo, env=env)
    seconds["propose (deterministic)"] = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["status"] == "published" and data["build"]["success"] and data["brain"] == "deterministic"
    assert git(demo, "rev-parse", "dataeng-crew/daily-sales-mart") == data["commit"]

    script = good_script(good_answers(profile_warehouse(demo / "warehouse" / "shop.duckdb"), "daily_sales mart"))
    started = time.perf_counter()
    with FakeLlmServer(script) as server:
        done = _run("dataeng-crew", "propose", "daily_sales mart", "--llm", "openai/gpt-4o", "--llm-base-url",
                    server.url + "/v1", "--json", cwd=demo, env={**env, "OPENAI_API_KEY": "sk-wheel-test-0000"})
    seconds["propose (crew, scripted LLM)"] = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    crew = json.loads(done.stdout)
    assert crew["status"] == "published" and crew["brain"] == "crew (compatible/gpt-4o)" and crew["build"]["success"]
    assert server.calls["planner"] >= 1 and all(u["fallback"] is None for u in crew["llm_usage"])
    # the re-run moved the branch over the tool's own commit (it carries the trailer), to exactly one commit
    assert git(demo, "rev-list", "--count", "main..dataeng-crew/daily-sales-mart") == "1"
    assert git(demo, "rev-parse", "dataeng-crew/daily-sales-mart") == crew["commit"]
    print("wheel test seconds:", json.dumps({k: round(v, 1) for k, v in seconds.items()}))
