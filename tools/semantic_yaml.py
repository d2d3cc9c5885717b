"""Semantic layer YAML: ``dbt_semantic_interfaces`` objects → validated → the ``semantic_models:``/``metrics:`` dbt reads.

The layer is built as dbt-semantic-interfaces' pydantic objects (the same ones dbt-core turns its YAML into), checked
with their own :class:`SemanticManifestValidator`, and rendered back to the YAML dbt 1.11 parses: ``model:
ref('…')`` instead of a node relation, filters as Jinja strings, measure inputs by name, ``label:`` on every metric.
A project without a time spine gets one (``time_spine: {standard_granularity_column: date_day}``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:  # the objects are built by the caller; importing them here costs nothing at run time
    from dbt_semantic_interfaces.implementations.filters.where_filter import PydanticWhereFilterIntersection
    from dbt_semantic_interfaces.implementations.metric import PydanticMetric, PydanticMetricInput
    from dbt_semantic_interfaces.implementations.semantic_model import PydanticSemanticModel

TIME_SPINE_MODEL = "metricflow_time_spine"
TIME_SPINE_COLUMN = "date_day"
TIME_SPINE_START = "1970-01-01"
TIME_SPINE_END = "2050-01-01"


def _value(enum_or_text: Any) -> str:
    return str(getattr(enum_or_text, "value", enum_or_text))


def _filters(intersection: PydanticWhereFilterIntersection | None) -> str | list[str] | None:
    """A filter as dbt's YAML writes it: one Jinja string, or a list of them (all must hold)."""
    if intersection is None or not intersection.where_filters:
        return None
    templates = [f.where_sql_template for f in intersection.where_filters]
    return templates[0] if len(templates) == 1 else templates


def _drop_empty(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if v not in (None, [], {}, "")}


def _semantic_model_yaml(sm: PydanticSemanticModel) -> dict[str, Any]:
    """One ``semantic_models:`` entry; ``node_relation.alias`` holds the dbt model name to ``ref()``."""
    return _drop_empty({
        "name": sm.name,
        "description": sm.description,
        "label": sm.label,
        "model": f"ref('{sm.node_relation.alias}')",
        "defaults": {"agg_time_dimension": sm.defaults.agg_time_dimension} if sm.defaults else None,
        "primary_entity": sm.primary_entity,
        "entities": [_drop_empty({"name": e.name, "type": _value(e.type), "expr": e.expr, "description": e.description,
                                  "label": e.label, "role": e.role}) for e in sm.entities],
        "dimensions": [_drop_empty({
            "name": d.name, "type": _value(d.type), "expr": d.expr, "description": d.description, "label": d.label,
            "is_partition": d.is_partition or None,
            "type_params": {"time_granularity": _value(d.type_params.time_granularity)} if d.type_params else None,
        }) for d in sm.dimensions],
        "measures": [_drop_empty({
            "name": m.name, "agg": _value(m.agg), "expr": m.expr, "description": m.description, "label": m.label,
            "agg_time_dimension": m.agg_time_dimension,
        }) for m in sm.measures],
    })


def _metric_input(item: PydanticMetricInput) -> str | dict[str, Any]:
    if item.filter is None and item.alias is None and item.offset_window is None and item.offset_to_grain is None:
        return item.name
    return _drop_empty({"name": item.name, "filter": _filters(item.filter), "alias": item.alias})


def _metric_yaml(metric: PydanticMetric) -> dict[str, Any]:
    """One ``metrics:`` entry (simple, ratio or derived; dbt 1.11 requires ``label``)."""
    params = metric.type_params
    type_params: dict[str, Any] = {}
    if params.measure is not None:
        measure = params.measure
        type_params["measure"] = _drop_empty({
            "name": measure.name, "filter": _filters(measure.filter), "alias": measure.alias,
            "join_to_timespine": measure.join_to_timespine or None, "fill_nulls_with": measure.fill_nulls_with})
        if list(type_params["measure"]) == ["name"]:
            type_params["measure"] = measure.name
    if params.numerator is not None:
        type_params["numerator"] = _metric_input(params.numerator)
    if params.denominator is not None:
        type_params["denominator"] = _metric_input(params.denominator)
    if params.expr:
        type_params["expr"] = params.expr
    if params.metrics:
        type_params["metrics"] = [_metric_input(m) for m in params.metrics]
    return _drop_empty({
        "name": metric.name,
        "label": metric.label or metric.name.replace("_", " "),
        "description": metric.description,
        "type": _value(metric.type),
        "type_params": type_params,
        "filter": _filters(metric.filter),
    })


def validate_layer(semantic_models: list[PydanticSemanticModel], metrics: list[PydanticMetric],
                   time_spine_schema: str = "main") -> list[str]:
    """Check a layer with dbt-semantic-interfaces' own validator (what ``dbt parse`` runs), without dbt.

    Args:
        semantic_models: The layer's semantic models.
        metrics: The layer's metrics.
        time_spine_schema: Schema of the time spine relation the manifest declares (the validator wants one).

    Returns:
        The blocking issues, one message each; empty when the layer is valid.
    """
    from dbt_semantic_interfaces.implementations.node_relation import PydanticNodeRelation
    from dbt_semantic_interfaces.implementations.project_configuration import PydanticProjectConfiguration
    from dbt_semantic_interfaces.implementations.semantic_manifest import PydanticSemanticManifest
    from dbt_semantic_interfaces.implementations.time_spine import PydanticTimeSpine, PydanticTimeSpinePrimaryColumn
    from dbt_semantic_interfaces.type_enums import TimeGranularity
    from dbt_semantic_interfaces.validations.semantic_manifest_validator import SemanticManifestValidator

    spine = PydanticTimeSpine(
        node_relation=PydanticNodeRelation(alias=TIME_SPINE_MODEL, schema_name=time_spine_schema),
        primary_column=PydanticTimeSpinePrimaryColumn(name=TIME_SPINE_COLUMN, time_granularity=TimeGranularity.DAY))
    manifest = PydanticSemanticManifest(semantic_models=list(semantic_models), metrics=list(metrics),
                                        project_configuration=PydanticProjectConfiguration(time_spines=[spine]))
    results = SemanticManifestValidator[PydanticSemanticManifest]().validate_semantic_manifest(manifest)
    return [issue.as_readable_str() for issue in results.errors]


def layer_yaml(semantic_models: list[PydanticSemanticModel], metrics: list[PydanticMetric]) -> dict[str, Any]:
    """Render a layer as the YAML document dbt 1.11 reads.

    Args:
        semantic_models: Semantic models whose ``node_relation.alias`` is the dbt model to ``ref()``.
        metrics: Simple, ratio and derived metrics over those models' measures.

    Returns:
        ``{"semantic_models": [...], "metrics": [...]}``, ready for ``yaml.safe_dump``.
    """
    return {"semantic_models": [_semantic_model_yaml(sm) for sm in semantic_models],
            "metrics": [_metric_yaml(m) for m in metrics]}


def time_spine_files(folder: str = "models/marts", start: str = TIME_SPINE_START,
                     end: str = TIME_SPINE_END) -> dict[str, str]:
    """The day time spine MetricFlow needs, as file contents (DuckDB SQL and its yml).

    Args:
        folder: Folder of the project, relative to its root, the two files go in.
        start: First day (inclusive, ISO date).
        end: Day after the last (exclusive, ISO date).

    Returns:
        Relative path → file content for ``metricflow_time_spine.sql`` and ``.yml``.
    """
    sql = ("with\n\ndays as (\n\n"
           f"    select cast(range as date) as {TIME_SPINE_COLUMN}\n\n"
           f"    from range(date '{start}', date '{end}', interval 1 day)\n\n)\n\nselect * from days\n")
    yml = {"version": 2, "models": [{
        "name": TIME_SPINE_MODEL,
        "description": f"One row per day from {start} (MetricFlow's time spine).",
        "config": {"materialized": "table"},
        "time_spine": {"standard_granularity_column": TIME_SPINE_COLUMN},
        "columns": [{"name": TIME_SPINE_COLUMN, "description": "The day.", "granularity": "day"}],
    }]}
    return {f"{folder}/{TIME_SPINE_MODEL}.sql": sql,
            f"{folder}/{TIME_SPINE_MODEL}.yml": yaml.safe_dump(yml, sort_keys=False)}


def has_time_spine(project_dir: Path, model_paths: list[str] | None = None) -> bool:
    """True when the project already declares a time spine (a ``time_spine:`` model, or the legacy model name)."""
    for model_path in model_paths or ["models"]:
        root = project_dir / model_path
        if not root.is_dir():
            continue
        if any(root.rglob(f"{TIME_SPINE_MODEL}.sql")):
            return True
        for path in root.rglob("*.y*ml"):
            try:
                if "time_spine:" in path.read_text(errors="replace"):
                    return True
            except OSError:
                continue
    return False


def dump_yaml(document: dict[str, Any]) -> str:
    """The layer as YAML text (key order kept, long filters unwrapped)."""
    return yaml.safe_dump(document, sort_keys=False, width=1000, allow_unicode=True)
