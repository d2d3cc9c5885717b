"""A local Spark session for the tests and benches: Hive catalog (Derby metastore) and warehouse under a temp folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def start_local_spark(root: Path, name: str, master: str = "local[2]", partitions: int = 2) -> tuple[Any, dict[str, str]]:
    """A Spark session whose catalog lives under ``root``; with the settings a dbt profile's
    ``server_side_parameters`` name to reach the same catalog."""
    from pyspark.sql import SparkSession

    conf = {"spark.sql.warehouse.dir": str(root / "warehouse"),
            "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={root}/metastore_db;create=true",
            "spark.sql.session.timeZone": "UTC", "spark.sql.shuffle.partitions": str(partitions),
            "spark.ui.enabled": "false"}
    builder = SparkSession.builder.master(master).appName(name).enableHiveSupport()
    for key, value in {**conf, "spark.driver.extraJavaOptions": f"-Dderby.system.home={root}/derby"}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session, conf
