"""The semantic layer of one metric query, in MetricFlow's vocabulary, and the oracle query over it.

For a :class:`MetricQuery` this builds what dbt's semantic layer would say about the same numbers — one semantic
model over the staged fact (its primary entity, a foreign entity per foreign key, the time dimension, a categorical
dimension for every column a filter, validity rule or breakdown reads), one per table a breakdown or filter is
joined from (chained over the foreign-key hops), a measure per metric and simple/ratio metrics whose filters are the
validity rules (NULL statuses kept), the request's filters and the metric's own value condition — as
``dbt_semantic_interfaces`` objects, validated with their validator and rendered as dbt 1.11 YAML.

It lives with the roles, not the tools, because it binds raw columns to the names the modeler stages them under
(``staged_name``, ``staging_model_for``) and the breakdown to the mart's join path (``fk_path``); the tools
(``tools/semantic_yaml.py``, ``tools/metricflow.py``) validate, render, parse and query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataeng_crew.agents.catalog import fk_path
from dataeng_crew.agents.marts import render
from dataeng_crew.agents.modeler import staging_model_for
from dataeng_crew.agents.semantics import entity_name, plural, quote_if_needed, repeated_key, singular, staged_name
from dataeng_crew.contracts import (
    ColumnProfile,
    ForeignKey,
    Metric,
    MetricQuery,
    ModelSpec,
    OracleResult,
    Plan,
    RowFilter,
    TableProfile,
    WarehouseProfile,
)
from dataeng_crew.errors import DataengCrewError
from dataeng_crew.tools.metricflow import DEFAULT_TIMEOUT, OracleQuery, run_oracle
from dataeng_crew.tools.semantic_yaml import dump_yaml, has_time_spine, layer_yaml, time_spine_files, validate_layer
from dataeng_crew.tools.warehouse import primary_key

MAX_HOPS = 2  # MetricFlow joins a dimension over at most two entity hops (its MAX_JOIN_HOPS)
ZERO_KINDS = {"count", "count_distinct", "sum"}  # the mart fills these with 0 on its spine
AGG = {"count": "sum", "sum": "sum", "average": "average", "duration": "average", "min": "min", "max": "max",
       "count_distinct": "count_distinct"}
TIME_NOT_NULL = "{{ TimeDimension('metric_time', 'day') }} is not null"


class Unsupported(Exception):
    """MetricFlow cannot express this query (the message says why)."""


def _name(text: str) -> str:
    """A valid MetricFlow element name: lower snake case, no double underscore, starts with a letter."""
    name = re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]", "_", text.lower())).strip("_")
    return name if name[:1].isalpha() else f"x_{name}"


@dataclass
class _Model:
    """A semantic model being assembled over one staged table."""

    table: TableProfile
    name: str
    model: str
    entity: str
    key: str | None
    foreign: dict[str, str] = field(default_factory=dict)  # entity -> staged column
    dimensions: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {expr, time}
    columns: dict[str, str] = field(default_factory=dict)  # raw column name -> dimension name

    def taken(self) -> set[str]:
        return {self.entity, *self.foreign, *self.dimensions}


class _Layer:
    """Binds one query's raw columns to semantic models, entities and dimension references."""

    def __init__(self, query: MetricQuery, profile: WarehouseProfile) -> None:
        self.query, self.profile = query, profile
        fact = profile.table(query.fact)
        if fact is None:
            raise Unsupported(f"the query's fact {query.fact!r} is not in the warehouse profile")
        self.fact = fact
        self.models: dict[str, _Model] = {}
        self.root = self._model(fact, _name(singular(entity_name(fact.name))))
        for fk in profile.foreign_keys:
            if fk.table == fact.name:
                entity = self._fk_entity(fk)
                if entity not in self.root.taken():
                    self.root.foreign[entity] = self._staged(fact, fk.column)

    # ---------------------------------------------------------------- names

    def _staged(self, table: TableProfile, column: str) -> str:
        col = table.column(column)
        if col is None:
            raise Unsupported(f"{table.name}.{column} is not in the warehouse profile")
        return staged_name(col, table)

    def _fk_entity(self, fk: ForeignKey) -> str:
        child = self.profile.table(fk.table)
        staged = self._staged(child, fk.column) if child else fk.column
        if staged.endswith("_id") and len(staged) > 3:
            return _name(staged.removesuffix("_id"))
        ref = self.profile.table(fk.ref_table)
        return _name(singular(entity_name(ref.name if ref else fk.ref_table)))

    def _model(self, table: TableProfile, entity: str) -> _Model:
        found = self.models.get(table.name)
        if found is not None:
            if found.entity != entity:
                raise Unsupported(f"{table.name} is reached both as entity {found.entity!r} and {entity!r}: one "
                                  "semantic model has one primary entity")
            return found
        pk = primary_key(table)
        built = _Model(table=table, name=_name(plural(entity_name(table.name))), model=staging_model_for(
            table, self.profile), entity=entity, key=self._staged(table, pk) if pk else None)
        if any(m.name == built.name for m in self.models.values()):
            built.name = _name(f"{built.name}_{len(self.models)}")
        self.models[table.name] = built
        return built

    def _dimension(self, sm: _Model, col: ColumnProfile, time: bool = False) -> str:
        """The dimension of ``sm`` reading ``col`` (added when new); its name."""
        if not time and col.name in sm.columns:
            return sm.columns[col.name]
        staged = staged_name(col, sm.table)
        name = _name(staged)
        if name in sm.taken() or name == "metric_time":
            name = _name(f"{name}_value")
        sm.dimensions[name] = {"expr": None if quote_if_needed(staged) == name else quote_if_needed(staged),
                               "time": time}
        if not time:
            sm.columns[col.name] = name
        return name

    def reference(self, raw: str) -> str:
        """The dimension reference (``order__customer__city``) of a raw ``table.column``, joining as needed."""
        table_name, _, column_name = raw.partition(".")
        table = self.profile.table(table_name)
        col = table.column(column_name) if table else None
        if table is None or col is None:
            raise Unsupported(f"the query names unknown column {raw!r}")
        if table.name == self.fact.name:
            return f"{self.root.entity}__{self._dimension(self.root, col)}"
        path = fk_path(self.fact, table, self.profile)
        if not path:
            raise Unsupported(f"{raw} is not reachable from {self.fact.name} over foreign keys")
        if len(path) > MAX_HOPS:
            raise Unsupported(f"{raw} is {len(path)} foreign-key hops from {self.fact.name}; MetricFlow joins a "
                              f"dimension over at most {MAX_HOPS}")
        links, child = [], self.root
        for fk in path:
            entity = self._fk_entity(fk)
            parent_table = self.profile.table(fk.ref_table)
            assert parent_table is not None
            column = self._staged(child.table, fk.column)
            if child.foreign.get(entity, column) != column or (entity not in child.foreign and entity in child.taken()):
                raise Unsupported(f"entity name {entity!r} is taken on {child.table.name}")
            child.foreign[entity] = column
            parent = self._model(parent_table, entity)
            parent.key = self._staged(parent_table, fk.ref_column)  # the column the foreign key points at
            links.append(entity)
            child = parent
        return "__".join(links + [self._dimension(child, col)])

    def fact_column(self, raw: str | None, what: str) -> str:
        """The staged (quoted) column of a raw ``table.column`` that must be on the fact (measure inputs)."""
        table_name, _, column_name = (raw or "").partition(".")
        if table_name != self.fact.name:
            raise Unsupported(f"the {what} {raw!r} is not a column of the fact {self.fact.name}: a MetricFlow "
                              "measure reads its own semantic model")
        return quote_if_needed(self._staged(self.fact, column_name))


def _template(f: RowFilter, layer: _Layer, validity: bool = False) -> str:
    """A row filter as a MetricFlow where template (the mart's predicate, over dimension references)."""
    dim = "{{ Dimension('" + layer.reference(f.column) + "') }}"

    def literal(value: str) -> str:
        if any(mark in value for mark in ("{{", "{%", "{#")):  # MetricFlow renders where filters with Jinja
            raise Unsupported(f"the filter value {value!r} holds Jinja delimiters")
        return "'" + value.replace("'", "''") + "'"

    if f.op == "in":
        return f"{dim} = {literal(f.values[0])}" if len(f.values) == 1 else \
            f"{dim} in ({', '.join(literal(v) for v in f.values)})"
    if f.op == "not_in":
        clause = f"{dim} not in ({', '.join(literal(v) for v in f.values)})"
        return f"{dim} is null or {clause}" if validity else clause  # validity keeps unknown statuses
    if f.op == "later_than":
        return f"{dim} > " + "{{ Dimension('" + layer.reference(f.values[0]) + "') }}"
    if f.op == "has_child":
        raise Unsupported("a metric that counts rows having a row in another table (an order with a return) is "
                          "not a MetricFlow where filter")
    return {"is_null": f"{dim} is null", "is_not_null": f"{dim} is not null", "is_true": f"coalesce({dim}, false)",
            "is_not_true": f"not coalesce({dim}, false)"}[f.op]


def _measure_expr(m: Metric, layer: _Layer) -> str:
    """The measure's SQL over the staged fact: the column, net of a discount, scaled; durations in their unit."""
    if m.kind == "count":
        return "1"
    col = layer.fact_column(m.column, f"{m.name} column")
    value = col if not m.quantity else f"{col} * {layer.fact_column(m.quantity, f'{m.name} quantity')}"
    if m.discount:
        d = layer.fact_column(m.discount, f"{m.name} discount")
        value = {"percent": f"{col} * (1 - coalesce({d}, 0) / 100.0)", "rate": f"{col} * (1 - coalesce({d}, 0))",
                 "amount": f"{col} - coalesce({d}, 0)"}[m.discount_kind or "amount"]
    if m.kind == "duration":
        start = layer.fact_column(m.start_column, f"{m.name} start")
        return f"date_diff('second', {start}, {col}) * {m.scale!r}"
    if m.scale != 1.0 and m.kind in {"sum", "average", "min", "max"}:
        value = f"({value}) * {m.scale!r}"
    return value


@dataclass(frozen=True)
class QueryLayer:
    """A query's semantic layer (``dbt_semantic_interfaces`` objects) and the oracle query over it."""

    semantic_models: list[Any]
    metrics: list[Any]
    oracle: OracleQuery


def semantic_layer(query: MetricQuery, plan: Plan, profile: WarehouseProfile) -> QueryLayer:
    """Build a metric query's semantic layer as ``dbt_semantic_interfaces`` objects.

    Args:
        query: The metric query the mart computes.
        plan: Its plan (the breakdown role and the mart's name).
        profile: The warehouse profile (raw → staged names, foreign keys).

    Returns:
        The semantic models, the metrics, and the MetricFlow query that should equal the mart.

    Raises:
        Unsupported: When MetricFlow cannot express the query (the message says why).
    """
    from dbt_semantic_interfaces.implementations.elements.dimension import (
        PydanticDimension,
        PydanticDimensionTypeParams,
    )
    from dbt_semantic_interfaces.implementations.elements.entity import PydanticEntity
    from dbt_semantic_interfaces.implementations.elements.measure import PydanticMeasure
    from dbt_semantic_interfaces.implementations.filters.where_filter import (
        PydanticWhereFilter,
        PydanticWhereFilterIntersection,
    )
    from dbt_semantic_interfaces.implementations.metric import (
        PydanticMetric,
        PydanticMetricInput,
        PydanticMetricInputMeasure,
        PydanticMetricTypeParams,
    )
    from dbt_semantic_interfaces.implementations.node_relation import PydanticNodeRelation
    from dbt_semantic_interfaces.implementations.semantic_model import (
        PydanticSemanticModel,
        PydanticSemanticModelDefaults,
    )
    from dbt_semantic_interfaces.type_enums import AggregationType, DimensionType, EntityType, MetricType
    from dbt_semantic_interfaces.type_enums.time_granularity import TimeGranularity

    layer = _Layer(query, profile)
    fact, root = layer.fact, layer.root
    # the time dimension every measure is aggregated by
    if query.time_parts:
        parts = [layer.fact_column(c, "time part") for c in query.time_parts]
        time_name = "event_date" if "event_date" not in root.taken() else "event_date_value"
        root.dimensions[time_name] = {"expr": f"make_date({', '.join(parts)})", "time": True}
    elif query.time_column:
        table_name, _, column_name = query.time_column.partition(".")
        col = fact.column(column_name) if table_name == fact.name else None
        if col is None:
            raise Unsupported(f"{fact.name} is dated by {query.time_column}, a column of another table: MetricFlow "
                              "aggregates a measure by a time dimension of its own semantic model")
        time_name = layer._dimension(root, col, time=True)
    else:
        raise Unsupported(f"{fact.name} has no time column: every MetricFlow measure needs an aggregation time "
                          "dimension")

    # filters: validity rules (NULL statuses kept), the request's filters, each metric's own condition
    common = [_template(f, layer, validity=True) for f in query.validity] + [_template(f, layer) for f in query.filters]
    dimension = plan.roles.get("dimension")
    if len(query.group_by) > 1:
        raise Unsupported("the mart breaks down by one dimension; the query names " + ", ".join(query.group_by))
    group_ref = layer.reference(dimension) if dimension else None

    def where(templates: list[str]) -> Any:
        return PydanticWhereFilterIntersection(where_filters=[
            PydanticWhereFilter(where_sql_template=t) for t in templates]) if templates else None

    own = {m.name: [_template(f, layer) for f in m.where] for m in query.metrics}  # every dimension before measures
    measures, metrics = [], []
    names = {m.name for m in query.metrics}
    for m in query.metrics:
        label = m.name.replace("_", " ").capitalize()
        description = (m.description + (f" Unit: {m.unit}." if m.unit and m.kind not in {"count", "count_distinct"}
                                        else "")).strip() or None
        if m.kind == "ratio":
            if m.numerator not in names or m.denominator not in names:
                raise Unsupported(f"ratio {m.name} reads metrics the query does not define")
            metrics.append(PydanticMetric(
                name=m.name, label=label, description=description, type=MetricType.RATIO,
                type_params=PydanticMetricTypeParams(numerator=PydanticMetricInput(name=m.numerator),
                                                     denominator=PydanticMetricInput(name=m.denominator))))
            continue
        measure_name = m.name if m.name not in root.taken() else f"{m.name}_measure"
        measures.append(PydanticMeasure(name=measure_name, agg=AggregationType(AGG[m.kind]),
                                        expr=_measure_expr(m, layer), description=description))
        metrics.append(PydanticMetric(
            name=m.name, label=label, description=description, type=MetricType.SIMPLE,
            type_params=PydanticMetricTypeParams(measure=PydanticMetricInputMeasure(
                name=measure_name, fill_nulls_with=0 if m.kind in ZERO_KINDS else None)),
            filter=where(common + own[m.name])))
    for metric in metrics:  # what dbt computes on parse: the measures each metric reads
        if metric.type is MetricType.SIMPLE:
            metric.type_params.input_measures = [metric.type_params.measure]
    by_name = {m.name: m for m in metrics}
    for metric in metrics:
        if metric.type is MetricType.RATIO:
            metric.type_params.input_measures = [
                *by_name[metric.type_params.numerator.name].type_params.input_measures,
                *by_name[metric.type_params.denominator.name].type_params.input_measures]

    semantic_models = []
    for sm in layer.models.values():
        entities = [PydanticEntity(name=sm.entity, type=EntityType.PRIMARY,
                                   expr=None if sm.key == sm.entity else sm.key)] if sm.key else []
        entities += [PydanticEntity(name=e, type=EntityType.FOREIGN, expr=None if c == e else c)
                     for e, c in sm.foreign.items()]
        dims = [PydanticDimension(
            name=n, type=DimensionType.TIME if d["time"] else DimensionType.CATEGORICAL, expr=d["expr"],
            type_params=PydanticDimensionTypeParams(time_granularity=TimeGranularity.DAY) if d["time"] else None)
            for n, d in sm.dimensions.items()]
        is_root = sm is root
        semantic_models.append(PydanticSemanticModel(
            name=sm.name, description=f"One row per {singular(entity_name(sm.table.name))}, read from {sm.model}.",
            node_relation=PydanticNodeRelation(alias=sm.model, schema_name="main"),
            defaults=PydanticSemanticModelDefaults(agg_time_dimension=time_name) if is_root else None,
            primary_entity=sm.entity if not sm.key else None, entities=entities, dimensions=dims,
            measures=measures if is_root else []))

    mart = render(plan, profile)  # the mart's own column names: the period, the breakdown
    keys: list[tuple[str, str]] = []
    group_by: list[str] = []
    if query.grain:
        group_by.append(f"metric_time__{query.grain.value}")
        keys.append((mart.columns[0].name, group_by[-1]))
    if group_ref:
        group_by.append(group_ref)
        keys.append((str(mart.meta.get("dimension")), group_ref))
    visible = [m for m in query.metrics if not m.hidden]
    oracle = OracleQuery(mart=mart.name, metrics=tuple(m.name for m in visible), group_by=tuple(group_by),
                         keys=tuple(keys), zero_metrics=tuple(m.name for m in visible if m.kind in ZERO_KINDS),
                         where=(TIME_NOT_NULL,) if query.grain else ())
    return QueryLayer(semantic_models=semantic_models, metrics=metrics, oracle=oracle)


def semantic_layer_yaml(query: MetricQuery, plan: Plan, profile: WarehouseProfile) -> dict[str, Any]:
    """The query's semantic layer as the YAML document dbt 1.11 reads, validated by dbt-semantic-interfaces.

    Args:
        query: The metric query the mart computes.
        plan: Its plan.
        profile: The warehouse profile.

    Returns:
        ``{"semantic_models": [...], "metrics": [...]}``.

    Raises:
        Unsupported: When MetricFlow cannot express the query, or the layer does not validate.
    """
    built = semantic_layer(query, plan, profile)
    problems = validate_layer(built.semantic_models, built.metrics)
    if problems:
        raise Unsupported("the semantic layer does not validate: " + "; ".join(problems[:5]))
    return layer_yaml(built.semantic_models, built.metrics)


def oracle(plan: Plan, profile: WarehouseProfile, project_dir: Path, profiles_dir: Path, workdir: Path, *,
           timeout: float = DEFAULT_TIMEOUT, layer_in_project: bool = False,
           saved_parse: Path | None = None) -> OracleResult:
    """Check a built metric mart against MetricFlow run on the query's semantic layer.

    Args:
        plan: A ``kind="metric"`` plan whose mart is built in the sandbox.
        profile: The warehouse profile the plan was made on.
        project_dir: The sandbox's dbt project (read, never written: a parsed copy goes to ``workdir``).
        profiles_dir: The sandbox's profiles folder (its DuckDB file holds the mart).
        workdir: Scratch folder.
        timeout: Seconds the MetricFlow query may take.
        layer_in_project: The proposal writes this layer into the project: parse it as it is, add nothing.
        saved_parse: The sandbox's saved dbt parse: the oracle's copy parses only what it adds.

    Returns:
        Rows compared and differences, or ``skipped_reason`` when MetricFlow cannot express or answer the query.
    """
    if plan.kind != "metric" or plan.query is None:
        return OracleResult(skipped_reason=f"a {plan.kind} plan is not a metric query")
    repeated = [f"{t.ref_name or t.name}.{repeated_key(t)}" for n in plan.source_tables
                if repeated_key(t := profile.table(n))]  # type: ignore[arg-type]
    if repeated:  # the mart keeps one row per key; a semantic model over the same relation would count copies
        return OracleResult(skipped_reason=f"{', '.join(repeated)} repeats in the project's model and the mart "
                            "deduplicates it; MetricFlow's semantic model over that relation would count the copies")
    if plan.query.first_per:
        return OracleResult(skipped_reason=f"a first row per {plan.query.first_per} is a window over the rows; "
                            "MetricFlow's measures aggregate every row")
    try:
        built = semantic_layer(plan.query, plan, profile)
        problems = validate_layer(built.semantic_models, built.metrics)
        if problems:
            raise Unsupported("the semantic layer does not validate: " + "; ".join(problems[:5]))
    except (Unsupported, DataengCrewError) as exc:
        return OracleResult(skipped_reason=str(exc))
    layer = None if layer_in_project else layer_yaml(built.semantic_models, built.metrics)
    return run_oracle(built.oracle, layer, project_dir, profiles_dir, workdir, timeout=timeout,
                      saved_parse=saved_parse)


def proposal_layer_files(plan: Plan, profile: WarehouseProfile, mart: ModelSpec, project_dir: Path,
                         wanted: bool | None) -> tuple[dict[str, str], str]:
    """The semantic layer a proposal commits beside its mart, and a note for the plan.

    Args:
        plan: The plan (only ``kind="metric"`` plans have a layer).
        profile: The warehouse profile.
        mart: The mart the layer describes (the yml goes in its folder).
        project_dir: The user's project (does it already have a semantic layer, a time spine?).
        wanted: True (``--semantic-layer``), False (``--no-semantic-layer``), None: when the project has one.

    Returns:
        Project-relative path → content, and a sentence for the plan ("" when nothing is written).
    """
    if plan.kind != "metric" or plan.query is None:
        return {}, ""
    if wanted is False or (wanted is None and not project_has_semantic_layer(project_dir)):
        return {}, ""
    try:
        doc = semantic_layer_yaml(plan.query, plan, profile)
    except (Unsupported, DataengCrewError) as exc:
        return {}, f"No semantic layer written: MetricFlow cannot express this query ({exc})."
    folder = mart.path.rsplit("/", 1)[0]
    files = {f"{folder}/_{mart.name}__semantic_layer.yml": dump_yaml(doc)}
    spine = not has_time_spine(project_dir)
    if spine:
        files.update(time_spine_files(folder=folder))
    return files, (f"Semantic layer: {len(doc['semantic_models'])} semantic model(s) and {len(doc['metrics'])} "
                   f"metric(s) in {folder}/_{mart.name}__semantic_layer.yml" + (", with the day time spine "
                   "MetricFlow needs" if spine else "") + "; dbt parse validates it.")


def project_has_semantic_layer(project_dir: Path) -> bool:
    """True when the project's yml files already declare semantic models or metrics."""
    for path in project_dir.rglob("*.y*ml"):
        if any(part in {"target", "dbt_packages", "logs", ".dataeng-crew"} for part in path.parts):
            continue
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if "semantic_models:" in text:
            return True
    return False
