import os

import pytest

from dataeng_crew.errors import UnsafeArtifactError
from dataeng_crew.tools.project_files import validate_path, write_project_files


@pytest.mark.parametrize(
    "path",
    ["../x.sql", "/tmp/x.sql", "models/../../x.sql", "macros/evil.sql", "dbt_project.yml", "profiles.yml",
     "packages.yml", "models/evil.py", "models/staging/x.sh", "seeds/x.csv", "~/x.sql", "C:/x.sql", "", "models//tmp/x.sql",
     "models\\..\\x.sql", " models/x.sql"],
)
def test_refused_paths(tmp_path, path):
    with pytest.raises(UnsafeArtifactError):
        validate_path(tmp_path, path)


@pytest.mark.parametrize("path", ["models/staging/shop/stg_shop__orders.sql", "models/marts/_marts__models.yml",
                                  "tests/generic/test_x.sql", "suites/fct_daily_sales.json"])
def test_allowed_paths(tmp_path, path):
    assert validate_path(tmp_path, path) == tmp_path / path


def test_symlink_is_refused_and_nothing_is_written(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "models").mkdir()
    os.symlink(outside, tmp_path / "models" / "link")
    files = {"models/ok.sql": "select 1", "models/link/evil.sql": "select 2"}
    with pytest.raises(UnsafeArtifactError, match="symbolic link"):
        write_project_files(tmp_path, files)
    assert not (tmp_path / "models" / "ok.sql").exists()  # all or nothing
    assert list(outside.iterdir()) == []
