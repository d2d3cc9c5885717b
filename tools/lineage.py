"""OpenLineage events for proposals, stages and generated models (openlineage-python client).

- One run per proposal (the parent), one child run per stage (roles and the tools that read or
  write data), one child run per generated model with input/output datasets, a schema facet and
  column lineage from sqlglot.
- Transport from the standard OpenLineage configuration when present (``OPENLINEAGE_URL`` for
  Marquez over HTTP, ``OPENLINEAGE_CONFIG``, ``OPENLINEAGE__TRANSPORT__*`` e.g. console); otherwise
  a file, ``.dataeng-crew/lineage.ndjson``. ``OPENLINEAGE_DISABLED=true`` turns it off.
- Events carry names, paths and schemas only: never values, environment or secrets.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NAMESPACE = "dataeng-crew"
PRODUCER = "https://github.com/dataeng-crew/dataeng-crew"


@dataclass(frozen=True)
class RunRef:
    """A run already started: its id and job name (children point at it)."""

    run_id: str
    job: str


@dataclass(frozen=True)
class DatasetRef:
    """A table, optionally with its columns ``[(name, type, description)]`` and column lineage."""

    namespace: str
    name: str
    columns: tuple[tuple[str, str, str], ...] = ()
    column_lineage: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = ()  # column → ((ns, table, col),)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _configured_by_env() -> bool:
    return any(k == "OPENLINEAGE_URL" or k == "OPENLINEAGE_CONFIG" or k.startswith("OPENLINEAGE__")
               for k in os.environ)


class Lineage:
    """Emits OpenLineage run events; a no-op when disabled."""

    def __init__(self, state_dir: Path, disabled: bool | None = None) -> None:
        """Create the emitter.

        Args:
            state_dir: Folder for the default file transport (``lineage.ndjson``).
            disabled: Force on/off; default reads ``OPENLINEAGE_DISABLED``.
        """
        if disabled is None:
            disabled = os.environ.get("OPENLINEAGE_DISABLED", "").lower() in {"1", "true", "yes"}
        self.disabled = disabled
        self.path = state_dir / "lineage.ndjson"
        self._client: Any = None
        if not disabled:
            from openlineage.client import OpenLineageClient
            from openlineage.client.event_v2 import set_producer

            set_producer(PRODUCER)  # facets carry _producer too

            if _configured_by_env():
                self._client = OpenLineageClient()
            else:
                from openlineage.client.transport.file import FileConfig, FileTransport

                self._client = OpenLineageClient(
                    transport=FileTransport(FileConfig(log_file_path=str(self.path), append=True)))

    # ------------------------------------------------------------------ building blocks

    def _datasets(self, refs: list[DatasetRef], output: bool) -> list[Any]:
        from openlineage.client.event_v2 import InputDataset, OutputDataset
        from openlineage.client.facet_v2 import column_lineage_dataset, schema_dataset

        out = []
        for ref in refs:
            facets: dict[str, Any] = {}
            if ref.columns:
                facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=[
                    schema_dataset.SchemaDatasetFacetFields(name=n, type=t, description=d or None,
                                                            ordinal_position=i + 1)
                    for i, (n, t, d) in enumerate(ref.columns)])
            if ref.column_lineage:
                facets["columnLineage"] = column_lineage_dataset.ColumnLineageDatasetFacet(fields={
                    column: column_lineage_dataset.Fields(inputFields=[
                        column_lineage_dataset.InputField(namespace=ns, name=table, field=col)
                        for ns, table, col in sources])
                    for column, sources in ref.column_lineage})
            cls = OutputDataset if output else InputDataset
            out.append(cls(namespace=ref.namespace, name=ref.name, facets=facets))
        return out

    def _emit(self, state: str, run: RunRef, parent: RunRef | None, inputs: list[DatasetRef],
              outputs: list[DatasetRef], error: str | None = None) -> None:
        if self.disabled:
            return
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import error_message_run, parent_run

        facets: dict[str, Any] = {}
        if parent is not None:
            facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=parent.run_id), job=parent_run.Job(namespace=NAMESPACE, name=parent.job))
        if error:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=error[:1000], programmingLanguage="python")
        event = RunEvent(eventType=getattr(RunState, state), eventTime=_now(), producer=PRODUCER,
                         run=Run(runId=run.run_id, facets=facets), job=Job(namespace=NAMESPACE, name=run.job),
                         inputs=self._datasets(inputs, False), outputs=self._datasets(outputs, True))
        self._client.emit(event)

    # ------------------------------------------------------------------ API

    def start(self, job: str, parent: RunRef | None = None, inputs: list[DatasetRef] | None = None) -> RunRef:
        """Emit START for a new run of ``job`` and return its reference."""
        from openlineage.client.uuid import generate_new_uuid

        run = RunRef(run_id=str(generate_new_uuid()), job=job)
        self._emit("START", run, parent, inputs or [], [])
        return run

    def complete(self, run: RunRef, parent: RunRef | None = None, inputs: list[DatasetRef] | None = None,
                 outputs: list[DatasetRef] | None = None) -> None:
        """Emit COMPLETE for ``run`` with the datasets it read and wrote."""
        self._emit("COMPLETE", run, parent, inputs or [], outputs or [])

    def fail(self, run: RunRef, parent: RunRef | None, error: str) -> None:
        """Emit FAIL for ``run`` with the error message."""
        self._emit("FAIL", run, parent, [], [], error=error)


MAX_LINEAGE_COLUMNS = 80  # sqlglot's lineage is quadratic in the width of a select: wide tables get the schema only


def lineage_roots(sql: str, schema: dict, columns: list[str]) -> dict[str, Any]:
    """sqlglot's lineage node of each of ``columns`` of ``sql``, all from one qualification of the query (the
    columns share its work); a column sqlglot cannot follow is left out."""
    from sqlglot.errors import SqlglotError
    from sqlglot.lineage import lineage

    try:
        every = lineage(None, sql, schema=schema, dialect="duckdb")
    except (SqlglotError, ValueError, KeyError):
        every = None
    if isinstance(every, dict):
        by_name = {name.lower(): node for name, node in every.items()}
        return {c: by_name[c.lower()] for c in columns if c.lower() in by_name}
    out = {}
    for column in columns:  # the whole query did not qualify: each column on its own, as far as it goes
        try:
            out[column] = lineage(column, sql, schema=schema, dialect="duckdb")
        except (SqlglotError, ValueError, KeyError):
            continue
    return out


def column_lineage(sql: str, schema: dict, columns: list[str]) -> dict[str, list[tuple[str, str]]]:
    """For each output column, the ``(catalog.schema.table, column)`` pairs it is computed from (sqlglot).

    Models wider than ``MAX_LINEAGE_COLUMNS`` return nothing (their events still carry the schema facet).
    """
    out: dict[str, list[tuple[str, str]]] = {}
    if len(columns) > MAX_LINEAGE_COLUMNS:
        return out
    for column, root in lineage_roots(sql, schema, columns).items():
        pairs = []
        for leaf in (n for n in root.walk() if not n.downstream):
            table = getattr(leaf.source, "this", None)
            if table is None or not hasattr(leaf.source, "catalog"):
                continue
            name = ".".join(p for p in (leaf.source.catalog, leaf.source.db, leaf.source.name) if p)
            pairs.append((name, leaf.name.rpartition(".")[2].strip('"')))
        out[column] = sorted(set(pairs))
    return out
