"""Contracts: the only exchange format between roles, tools, rendering, checks and publishing.

The deterministic brains and the LLM crew both produce these objects; everything downstream
(rendering, sqlglot checks, dbt build, publishing) consumes them without knowing who wrote them.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class Contract(BaseModel):
    """Base of every contract: strict about unknown keys so agent output cannot smuggle fields."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --------------------------------------------------------------------------- profiling


class ColumnProfile(Contract):
    """What profiling learned about one column.

    Attributes:
        name: Column name exactly as in the warehouse.
        data_type: DuckDB type name (``BIGINT``, ``VARCHAR``, ...).
        null_fraction: Share of NULL values in the (sampled) rows, 0..1.
        distinct_count: Approximate number of distinct non-null values.
        min_value: Smallest value rendered as text (None when empty or not orderable).
        max_value: Largest value rendered as text.
        sample_values: A few distinct non-null values (length-capped text).
        top_values: Every distinct value when the column is low-cardinality, else empty.
    """

    name: str
    data_type: str
    null_fraction: float = 0.0
    distinct_count: int = 0
    min_value: str | None = None
    max_value: str | None = None
    sample_values: list[str] = Field(default_factory=list)
    top_values: list[str] = Field(default_factory=list)
    timestamp_formats: list[str] = Field(
        default_factory=list,
        description="For text columns holding timestamps: the strptime formats that parse them, most common first.",
    )
    unparsed_timestamps: int = Field(default=0, description="Text timestamps no known format parses.")


class TableProfile(Contract):
    """What profiling learned about one table."""

    database: str
    schema_name: str
    name: str
    row_count: int
    profiled_rows: int
    sampled: bool = False
    columns: list[ColumnProfile] = Field(default_factory=list)
    candidate_keys: list[str] = Field(default_factory=list)
    duplicate_key_rows: dict[str, int] = Field(
        default_factory=dict,
        description="For id-like columns that are almost unique: rows sharing a key (re-synced loads).",
    )
    origin: Literal["raw", "source", "seed", "model"] = Field(
        default="raw", description="What the relation is in the dbt project: an undeclared raw table, a declared "
        "source table, a seed, or the output of one of the project's models.")
    ref_name: str | None = Field(default=None, description=(
        "The dbt node to read it with: model/seed name for ref(), the source table name for source()."))
    declared_keys: list[str] = Field(default_factory=list, description="Columns the project tests unique + not_null.")

    def column(self, name: str) -> ColumnProfile | None:
        """Return the profile of ``name`` (case-insensitive) or None."""
        lowered = name.lower()
        return next((c for c in self.columns if c.name.lower() == lowered), None)

    @property
    def fqn(self) -> str:
        """Fully qualified ``database.schema.table`` name."""
        return f"{self.database}.{self.schema_name}.{self.name}"


class ForeignKey(Contract):
    """A foreign key found by an inclusion check: every non-null child value exists in the parent."""

    table: str
    column: str
    ref_table: str
    ref_column: str
    inclusion: float = Field(ge=0, le=1, description="Share of distinct child values found in parent.")
    declared: bool = Field(default=False, description="From the project's relationships tests (inclusion 1.0).")


class WarehouseProfile(Contract):
    """Profiles of every table in the warehouse plus the foreign keys between them."""

    path: str
    database: str
    tables: list[TableProfile] = Field(default_factory=list)
    foreign_keys: list[ForeignKey] = Field(default_factory=list)
    inventory: ProjectInventory | None = Field(default=None, description=(
        "The dbt project the tables were classified against (None: planning on the warehouse alone)."))

    def table(self, name: str) -> TableProfile | None:
        """Return the table called ``name`` (case-insensitive) or None."""
        lowered = name.lower()
        return next((t for t in self.tables if t.name.lower() == lowered), None)


# --------------------------------------------------------------------------- semantic catalog


class CatalogMeasure(Contract):
    """A measure a fact can answer: a row count, or a sum/average of a column (or a derived amount)."""

    name: str
    meaning: Literal["count", "money", "quantity", "duration", "distance", "number"]
    expression: str = Field(description="How it is computed, over raw columns of the fact (or its line items).")
    source: str = Field(description="'table' or 'table.column' the measure reads.")
    note: str = ""


class CatalogFact(Contract):
    """A table recording events at its own grain: it has an event time."""

    table: str
    event_time: str = Field(description="Raw column (or 'year/month/day' parts) the events are dated by.")
    key: str | None = None
    synonyms: list[str] = Field(default_factory=list, description="Words a request may use for it.")
    sale_like: float = Field(default=0.0, description="How much it looks like a sale (money, lines, name).")
    measures: list[CatalogMeasure] = Field(default_factory=list)
    dimensions: list[str] = Field(default_factory=list, description="'table.column' reachable over FKs (≤ 3 hops).")
    filters: list[str] = Field(default_factory=list, description="Status/test/cancel columns with their meaning.")


class CatalogEntity(Contract):
    """A table facts reference: one row per key."""

    table: str
    key: str
    referenced_by: list[str] = Field(default_factory=list, description="'child.column' foreign keys to it.")


class SemanticCatalog(Contract):
    """What the warehouse means, inferred from its profiles: keys, foreign keys, facts, measures, entities."""

    keys: dict[str, str] = Field(default_factory=dict, description="table -> primary key column.")
    foreign_keys: list[ForeignKey] = Field(default_factory=list)
    facts: list[CatalogFact] = Field(default_factory=list)
    entities: list[CatalogEntity] = Field(default_factory=list)
    sales_fact: str | None = Field(default=None, description="The most sale-like fact, answering sales/revenue.")


# --------------------------------------------------------------------------- planning


class Grain(str, Enum):
    """Time grain of a time-series mart."""

    day = "day"
    week = "week"
    month = "month"
    quarter = "quarter"
    year = "year"


class MeasureSpec(Contract):
    """A measure the mart will compute, with its business definition."""

    name: str
    definition: str


class RowFilter(Contract):
    """A predicate on one raw column of a fact (or a table it references): validity rules, value metrics, filters."""

    column: str = Field(description="Raw 'table.column'.")
    op: Literal["in", "not_in", "is_null", "is_not_null", "is_true", "is_not_true", "later_than", "has_child"]
    values: list[str] = Field(default_factory=list, description="Raw values for 'in'/'not_in' (matched after "
                              "staging's case/blank cleaning); 'later_than': the raw 'table.column' compared with; "
                              "'has_child': the raw 'child_table.fk_column' whose rows reference this row's key.")
    reason: str = Field(default="", description="Why: the stated rule (validity) or the request's words.")


class Metric(Contract):
    """One metric of a query, in MetricFlow's vocabulary (simple measure, ratio, derived)."""

    name: str = Field(description="Output column name.")
    kind: Literal["count", "sum", "average", "min", "max", "count_distinct", "duration", "ratio"]
    column: str | None = Field(default=None, description="Raw 'table.column' the aggregate reads (not for count).")
    start_column: str | None = Field(default=None, description="Durations: raw 'table.column' of the start time.")
    unit: str = Field(default="", description="Unit of the result: 'major currency units', 'hours', 'kWh', "
                      "'fraction' …")
    scale: float = Field(default=1.0, description="The staged column is multiplied by this (1/100 for cents "
                         "when staging did not convert; durations: 1/3600 for hours).")
    discount: str | None = Field(default=None, description="Raw 'table.column' of a discount applied to a money "
                                 "sum: a rate/percent (× (1 − rate)) or an amount (−).")
    discount_kind: Literal["rate", "percent", "amount"] | None = None
    quantity: str | None = Field(default=None, description="Raw 'table.column' a unit price is multiplied by "
                                 "(the line's value: unit price × quantity).")
    where: list[RowFilter] = Field(default_factory=list, description="Rows this metric counts (value metrics).")
    numerator: str | None = Field(default=None, description="Ratio: name of the numerator metric.")
    denominator: str | None = Field(default=None, description="Ratio: name of the denominator metric.")
    hidden: bool = Field(default=False, description="Only an input of a ratio: not a column of the mart.")
    description: str = ""


class Choice(Contract):
    """A reading the planner chose by a stated rule, and the readings it did not choose."""

    topic: str = Field(description="What was decided: 'time', 'measure', 'validity', 'unit', 'fact' …")
    chosen: str
    rule: str
    alternatives: list[str] = Field(default_factory=list)


class MetricQuery(Contract):
    """A request as a metric query: metrics × time grain × group-by dimensions × filters over one fact."""

    fact: str = Field(description="Raw table the metrics count rows of.")
    time_column: str | None = Field(default=None, description="Raw 'table.column' metrics are dated by.")
    time_parts: list[str] = Field(default_factory=list, description="Raw year/month/day columns, when the fact "
                                  "dates its rows by calendar parts.")
    grain: Grain | None = Field(default=None, description="None: totals per group, no time column.")
    group_by: list[str] = Field(default_factory=list, description="Raw 'table.column' dimensions (≤ 3 FK hops).")
    metrics: list[Metric]
    validity: list[RowFilter] = Field(default_factory=list, description="Rows no metric counts (stated rules).")
    filters: list[RowFilter] = Field(default_factory=list, description="The request's own filters.")
    first_per: str | None = Field(default=None, description="Raw 'table.fk_column': only each entity's first "
                                  "counted row (by the time column) is counted ('first orders' = each customer's "
                                  "first valid order).")
    choices: list[Choice] = Field(default_factory=list)


class Plan(Contract):
    """The planner's interpretation of the request."""

    request: str
    mart_name: str | None = Field(default=None, description="None for a staging-only plan.")
    kind: Literal["time_grain", "event", "staging", "entity", "metric"] = "time_grain"
    grain: Grain | None = None
    subject: str
    measures: list[MeasureSpec]
    source_tables: list[str] = Field(description="Raw tables the proposal stages, by name.")
    roles: dict[str, str] = Field(
        default_factory=dict,
        description="Semantic role -> raw 'table' or 'table.column' the plan binds it to.",
    )
    interpretations: list[str] = Field(
        default_factory=list, description="Every choice the planner made, in plain words."
    )
    alternatives: list[str] = Field(
        default_factory=list,
        description="Ambiguity: other tables/columns that could have answered, and why they were not chosen.",
    )
    filters: dict[str, str] = Field(
        default_factory=dict, description="Role of a filter column (in ``roles``) -> the value rows must equal.",
    )
    incremental_lookback: int | None = Field(
        default=None, description="When set, the mart is incremental and reprocesses this many trailing periods.",
    )
    query: MetricQuery | None = Field(default=None, description="kind 'metric': the metric query the mart computes.")


# --------------------------------------------------------------------------- dbt artifacts


class TestSpec(Contract):
    """A dbt data test on a column (or on the model when ``column`` is None)."""

    __test__ = False  # not a pytest test class

    name: str = Field(description="Generic test name: unique, not_null, relationships, ...")
    column: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    severity: Literal["error", "warn"] = "error"
    reason: str = Field(default="", description="Why this test was inferred (goes to the report).")

    def to_yaml(self) -> str | dict[str, Any]:
        """The entry under ``data_tests:`` in dbt >= 1.10 form (arguments under ``arguments:``)."""
        if not self.arguments and self.severity == "error":
            return self.name
        body: dict[str, Any] = {}
        if self.arguments:
            body["arguments"] = self.arguments
        if self.severity != "error":
            body["config"] = {"severity": self.severity}
        return {self.name: body}


class ColumnSpec(Contract):
    """A column of a generated model or source table."""

    name: str
    description: str
    data_type: str | None = None
    tests: list[TestSpec] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)


Layer = Literal["staging", "intermediate", "marts"]
Materialization = Literal["view", "table", "incremental", "ephemeral"]


class ModelSpec(Contract):
    """A dbt model: its SQL (Jinja limited to ref/source/config) and its documented columns."""

    name: str
    layer: Layer
    materialization: Materialization
    description: str
    sql: str
    columns: list[ColumnSpec]
    folder: str = Field(description="Folder under the model path, e.g. 'staging/shop' or 'marts' ('' for its root).")
    root: str = Field(default="models", description="The project's model path the folder is under.")
    tags: list[str] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)
    contract_enforced: bool = False
    grants: dict[str, list[str]] = Field(default_factory=dict, description="dbt grants, e.g. {select: [role]}.")
    tests: list[TestSpec] = Field(default_factory=list, description="Model-level tests.")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not value.replace("_", "").isalnum() or not value.islower() or not value[0].isalpha():
            raise ValueError(f"model name must be lower snake_case, got {value!r}")
        return value

    @property
    def path(self) -> str:
        """Path of the SQL file relative to the dbt project root."""
        return "/".join(p for p in (self.root, self.folder, f"{self.name}.sql") if p)

    def column(self, name: str) -> ColumnSpec | None:
        """Return the column called ``name`` or None."""
        return next((c for c in self.columns if c.name == name), None)


class SourceTableSpec(Contract):
    """A raw table declared in a dbt source."""

    name: str
    description: str
    loaded_at_field: str | None = None
    freshness: dict[str, Any] | None = None
    columns: list[ColumnSpec] = Field(default_factory=list)
    tests: list[TestSpec] = Field(default_factory=list, description="Table-level data tests.")
    identifier: str | None = Field(default=None, description="The warehouse table's real name when it is not a "
                                   "plain identifier (e.g. ord\"ers); ``name`` is then its safe dbt name.")

    @property
    def relation_name(self) -> str:
        """The table's name in the warehouse."""
        return self.identifier or self.name


class SourceSpec(Contract):
    """A dbt source: one raw schema of the warehouse."""

    name: str
    database: str
    schema_name: str
    description: str
    tables: list[SourceTableSpec]

    @property
    def folder(self) -> str:
        """Folder of the source's staging models under models/."""
        return f"staging/{self.name}"


class ColumnPolicy(Contract):
    """Governance decision for one column."""

    model: str
    column: str
    classification: Literal["pii", "confidential", "internal", "public"]
    pii_kind: str | None = None
    confidence: float = Field(ge=0, le=1)
    evidence: str = Field(description="Why: name and value patterns. Never raw values.")
    action: Literal["tag", "mask", "drop"] = "tag"


class GovernancePolicy(Contract):
    """The project's machine-readable governance policy (``governance.yml`` in the dbt project)."""

    restricted_classifications: list[str] = Field(default_factory=lambda: ["pii"])
    mart_pii_action: Literal["hash", "drop", "refuse"] = "hash"
    approvers: list[str] = Field(default_factory=lambda: ["@data-governance"])
    unmasked_readers: list[str] = Field(
        default_factory=list, description="Database roles granted SELECT on models holding restricted columns."
    )
    min_confidence: float = Field(default=0.6, ge=0, le=1, description="Below this, a PII finding is reported only.")
    max_rows_scanned: int = Field(default=50_000_000, ge=0,
                                  description="A mart whose EXPLAIN estimate scans more rows needs cost approval.")
    cost_approvers: list[str] = Field(default_factory=lambda: ["@data-platform"])
    incremental_above_rows: int = Field(default=10_000_000, ge=0,
                                        description="Marts scanning more rows than this are advised to be incremental.")
    incremental_lookback_periods: int = Field(default=3, ge=0, description=(
        "Incremental marts recompute this many trailing periods on each run, so late-arriving rows are counted."))


class PiiExposure(Contract):
    """A mart column whose lineage reaches a restricted column, and what governance did about it."""

    model: str
    column: str
    sources: list[str] = Field(description="Restricted upstream columns, as model.column.")
    action: Literal["hash", "drop", "refuse"]


class ApprovalRequest(Contract):
    """Sign-off the proposal needs before it may be merged."""

    kind: Literal["governance", "cost"]
    reasons: list[str]
    approvers: list[str] = Field(default_factory=list)


# --------------------------------------------------------------------------- checks


class SqlIssue(Contract):
    """One problem found by the sqlglot checks."""

    model: str
    kind: Literal["parse", "unsafe", "jinja", "unknown_table", "unknown_column", "columns_mismatch"]
    message: str


class NodeResult(Contract):
    """Result of one dbt node (model, test, seed...) in a build."""

    unique_id: str
    resource_type: str
    status: str
    message: str | None = None
    failures: int | None = None
    execution_time: float = 0.0
    test_name: str | None = Field(default=None, description="Generic test name for test nodes.")
    attached_to: str | None = Field(default=None, description="Model or source name a test is attached to.")
    column: str | None = None
    compiled_code: str | None = Field(default=None, description="Compiled SQL, kept for failing tests only.")


class BuildResult(Contract):
    """Outcome of a dbt invocation."""

    command: list[str]
    success: bool
    error: str | None = None
    nodes: list[NodeResult] = Field(default_factory=list)
    elapsed_seconds: float = 0.0

    @property
    def failed_nodes(self) -> list[NodeResult]:
        """Nodes whose status is error or fail."""
        return [n for n in self.nodes if n.status in {"error", "fail", "runtime error"}]


class CheckReport(Contract):
    """Every check the proposal went through before publishing."""

    sql_issues: list[SqlIssue] = Field(default_factory=list)
    models_checked: int = 0
    build: BuildResult | None = None

    @property
    def passed(self) -> bool:
        """True when sqlglot found nothing and the build succeeded."""
        return not self.sql_issues and self.build is not None and self.build.success


# --------------------------------------------------------------------------- the proposal


class TriageDecision(Contract):
    """What the quality role decided about a generated test that failed on the real data."""

    test: str
    model: str
    column: str | None = None
    verdict: Literal["data_wrong", "inference_wrong"]
    action: Literal["kept_as_warning", "loosened", "dropped"]
    explanation: str
    failing_rows: list[dict[str, str]] = Field(default_factory=list, description="Up to 5 examples, cleaned.")


class ExpectationSpec(Contract):
    """One Great Expectations expectation, by its GX class name and keyword arguments."""

    type: str = Field(description="GX expectation class, e.g. ExpectColumnValuesToNotBeNull.")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    reason: str = ""


SUITES_FOLDER = "gx/expectations"  # where a GX file context keeps suites
LEGACY_SUITES_FOLDER = "suites"  # where proposals before the lean layout put them


class ExpectationSuiteSpec(Contract):
    """A GX suite for one model, derived from the profiles."""

    name: str
    model: str
    expectations: list[ExpectationSpec]

    @property
    def path(self) -> str:
        """Where the suite's GX JSON goes, relative to the dbt project: GX's own folder (``gx/expectations``)."""
        return f"{SUITES_FOLDER}/{self.name}.json"


class ExpectationOutcome(Contract):
    """Result of one expectation."""

    type: str
    column: str | None = None
    success: bool
    observed: str | None = None


class SuiteResult(Contract):
    """Validation of one suite against the built table."""

    suite: str
    model: str
    evaluated: int
    passed: int
    failed: int
    rows_validated: int
    sampled: bool = False
    outcomes: list[ExpectationOutcome] = Field(default_factory=list)
    error: str | None = None


class TraceStep(Contract):
    """One step of the run trace: why (thought), what was called (action), what came back (observation)."""

    role: str
    thought: str = ""
    action: str
    observation: str = ""


class CostEstimate(Contract):
    """EXPLAIN-based estimate for a mart, and the materialization it suggests."""

    model: str
    rows_scanned: int = Field(description="Rows of the raw tables the mart reads (profiled row counts).")
    rows_produced: int | None = Field(default=None, description="DuckDB's estimated output cardinality.")
    threshold: int
    over_threshold: bool
    materialization_advice: Literal["view", "table", "incremental"]
    explanation: str


class StageTiming(Contract):
    """Wall time of one flow stage."""

    stage: str
    seconds: float


class RepairRound(Contract):
    """One round of the repair loop: a check refused a model, the role that wrote it was asked to fix it."""

    round: int = Field(ge=1)
    model: str
    role: str = Field(description="The role that wrote the model and was asked to repair it.")
    stage: Literal["sqlglot", "dbt build"]
    error: str = Field(description="The error given back to the role (trimmed, secrets redacted).")
    outcome: Literal["rewritten", "cannot_repair"]
    sql_before: str = ""
    sql_after: str = ""


class RoleUsage(Contract):
    """LLM accounting for one role of the crew in one proposal."""

    role: str
    llm: str = Field(default="", description="provider/model")
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    retries: int = 0
    seconds: float = 0.0
    fallback: str | None = Field(default=None, description="Why the deterministic brain played this role, if it did.")


class ModifiedFile(Contract):
    """An existing project file a proposal changes, with its unified diff (listed in the PR)."""

    path: str = Field(description="Relative to the repository.")
    diff: str


class OracleResult(Contract):
    """MetricFlow, run on the query's generated semantic layer, compared row for row with the built mart."""

    rows: int = Field(default=0, description="Mart rows compared (period × group).")
    differences: int = Field(default=0, description="Rows where a metric or a key differs (abs tolerance 0.01).")
    detail: list[str] = Field(default_factory=list, description="A few differing rows, in words.")
    skipped_reason: str | None = Field(default=None, description="Why no comparison ran (MetricFlow cannot express "
                                       "the query, or the layer did not parse); None when it ran.")
    metrics: list[str] = Field(default_factory=list, description="The MetricFlow metrics queried.")
    group_by: list[str] = Field(default_factory=list, description="The MetricFlow group-by items queried.")
    elapsed_seconds: float = 0.0


# --------------------------------------------------------------------------- the user's own warehouse


class WarehouseTarget(Contract):
    """The dbt target a project's profile names, rendered (``env_var()`` read). The password never leaves it:
    it is a secret, shown as ``**********`` in any dump."""

    profile: str
    target: str
    profiles_dir: str
    type: str = Field(description="dbt adapter type: duckdb, postgres, spark, ...")
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: SecretStr = Field(default=SecretStr(""), exclude=True,
                                description="The target's secret: a password, or a Spark target's token.")
    dbname: str | None = None
    schema_: str | None = Field(default=None, alias="schema")
    path: str | None = Field(default=None, description="DuckDB file (type duckdb).")
    method: str | None = Field(default=None, description="Spark: session, thrift or http.")
    options: dict[str, Any] = Field(default_factory=dict, exclude=True, description=(
        "Other adapter settings (Spark: cluster, organization, auth, server_side_parameters, ...); never dumped."))

    @property
    def label(self) -> str:
        """How messages name it: the profile and target, never a credential."""
        return f"profile {self.profile!r}, target {self.target!r}"


class ExtractedRelation(Contract):
    """One relation of an extract: rows copied, rows the warehouse holds, the time window kept."""

    relation: str = Field(description="schema.table")
    rows: int
    source_rows: int = Field(description="Rows in the warehouse (the catalog's estimate when large).")
    sampled: bool = Field(description="Whether fewer rows than the warehouse holds were copied.")
    time_column: str | None = None
    window_start: str | None = None
    window_end: str | None = None
    parents_added: int = Field(default=0, description="Rows copied only to close a foreign key.")


class ExtractSummary(Contract):
    """What the DuckDB extract of a PostgreSQL or Spark warehouse held: the proposal's numbers come from it."""

    target: str = Field(description="profile and target read (no credentials)")
    engine: str = Field(default="postgres", description="dbt adapter type of the warehouse: postgres or spark.")
    database: str = Field(description="The extract's DuckDB catalog: the PostgreSQL database, or spark_catalog.")
    db_file: str
    max_rows: int = Field(description="Sample size per relation.")
    window_days: int | None = Field(default=None, description="Time window kept where a table has a timestamp.")
    relations: list[ExtractedRelation] = Field(default_factory=list)
    foreign_keys: list[str] = Field(default_factory=list, description="child.col -> parent.col, closed in the extract.")
    seconds: float = 0.0


class TargetValidation(Contract):
    """``--validate-on-target``: the committed SQL built in a scratch schema of the real warehouse."""

    schema_: str = Field(alias="schema")
    success: bool
    error: str | None = None
    tests_passed: int = 0
    tests_failed: int = 0
    mart_rows: dict[str, int] = Field(default_factory=dict, description="Mart → rows on the target.")
    extract_rows: dict[str, int] = Field(default_factory=dict, description="Mart → rows in the DuckDB sandbox.")
    rows_differing: dict[str, int] = Field(default_factory=dict, description="Mart → rows in one build only.")
    dropped: bool = False


class Proposal(Contract):
    """Everything one `propose` run produced, checked and published."""

    proposal_id: str
    request: str
    created_at: str
    status: Literal["published", "validated", "failed", "interrupted", "rolled_back"] = "failed"
    brain: str = "deterministic"
    plan: Plan | None = None
    sources: list[SourceSpec] = Field(default_factory=list)
    models: list[ModelSpec] = Field(default_factory=list)
    policies: list[ColumnPolicy] = Field(default_factory=list)
    exposures: list[PiiExposure] = Field(default_factory=list)
    approvals: list[ApprovalRequest] = Field(default_factory=list)
    suites: list[ExpectationSuiteSpec] = Field(default_factory=list)
    suite_results: list[SuiteResult] = Field(default_factory=list)
    triage: list[TriageDecision] = Field(default_factory=list)
    trace: list[TraceStep] = Field(default_factory=list)
    costs: list[CostEstimate] = Field(default_factory=list)
    checks: CheckReport = Field(default_factory=CheckReport)
    files: list[str] = Field(default_factory=list, description="Paths written, relative to the repo.")
    modified: list[ModifiedFile] = Field(default_factory=list, description="Existing files changed, with diffs.")
    branch: str | None = None
    commit: str | None = None
    pr: str | None = None
    warehouse: str | None = None
    proposal_dir: str | None = None
    error: str | None = None
    timings: list[StageTiming] = Field(default_factory=list)
    target_dialect: str = Field(default="duckdb", description="Dialect of the committed model SQL.")
    review_commands: list[str] = Field(default_factory=list, description="Shell lines that build the published "
                                       "branch on a fresh clone (the PR's review steps).")
    ddl_dialects: list[str] = Field(default_factory=list, description="Dialects DDL is written for (empty: "
                                    "the target dialect only).")
    dialect_warnings: list[str] = Field(
        default_factory=list, description="Constructs the transpilation to target_dialect could not translate faithfully.")
    pull_request: PullRequestRef | None = Field(default=None, description="The GitHub PR, with --publish github.")
    repairs: list[RepairRound] = Field(default_factory=list, description="Every repair-loop round, in order.")
    llm_usage: list[RoleUsage] = Field(default_factory=list, description="LLM calls, tokens and time per role.")
    oracle: OracleResult | None = Field(default=None, description="MetricFlow on the generated semantic layer, "
                                        "compared with the mart (metric plans).")
    data_diffs: list[ModelDiff] = Field(default_factory=list,
                                        description="Data diff of each added/changed model against the base build.")
    extract: ExtractSummary | None = Field(default=None, description="The DuckDB extract the checks ran on, when "
                                           "the warehouse is PostgreSQL.")
    target_validation: TargetValidation | None = None
    roles_to_create: list[str] = Field(default_factory=list, description="Roles the grants need that the target "
                                       "lacks (or could not be checked): their grants were left out.")


class PullRequestRef(Contract):
    """Where a proposal was published on GitHub (never the token)."""

    repo: str = Field(description="owner/name")
    api_url: str
    number: int
    url: str
    branch: str
    base: str
    commit: str = Field(description="The remote commit's sha (differs from the local branch's commit).")
    draft: bool = True
    labels: list[str] = Field(default_factory=list)
    reviewers: list[str] = Field(default_factory=list)
    team_reviewers: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)




# --------------------------------------------------------------------------- the user's dbt project


class InventoryColumn(Contract):
    """A column of a project model or source table, as its yml documents it (or the built relation has it)."""

    name: str
    description: str = ""
    data_type: str | None = None


class InventorySourceTable(Contract):
    """One table of a declared dbt source."""

    name: str
    identifier: str = Field(description="The relation name in the warehouse.")
    columns: list[InventoryColumn] = Field(default_factory=list)


class InventorySource(Contract):
    """A dbt source the project declares, with the yml file it is declared in."""

    name: str
    database: str | None = None
    schema_name: str
    file: str = Field(description="The yml file declaring it, relative to the project root.")
    tables: list[InventorySourceTable] = Field(default_factory=list)


class InventorySeed(Contract):
    """A seed of the project (raw data loaded by ``dbt seed``)."""

    name: str
    path: str
    schema_name: str = "main"
    alias: str


class InventoryModel(Contract):
    """A model of the project (never replaced by a proposal unless dataeng-crew made it)."""

    name: str
    path: str = Field(description="The SQL file, relative to the project root.")
    layer: Literal["staging", "intermediate", "marts"]
    materialization: str = "view"
    schema_name: str = "main"
    alias: str
    description: str = ""
    columns: list[InventoryColumn] = Field(default_factory=list, description="Documented in yml, else built columns.")
    yml_file: str | None = Field(default=None, description="The yml file documenting the model, if any.")
    depends_on: list[str] = Field(default_factory=list, description="Parents as 'model:x', 'seed:x', 'source:s.t'.")
    made_by_crew: bool = Field(default=False, description="Carries dataeng-crew's meta marker (a re-run may replace it).")


class InventoryTest(Contract):
    """A generic data test the project declares: what it already asserts about keys, references and values."""

    kind: str = Field(description="unique, not_null, relationships, accepted_values, ...")
    node: str = Field(description="'model:x', 'seed:x' or 'source:s.t' it is attached to.")
    column: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)


class ProjectConventions(Contract):
    """How the project names and lays out its files; new files follow it (dbt's style guide when it has none)."""

    staging_prefix: str = "stg_"
    staging_with_source: bool = Field(default=True, description="stg_<source>__<entity> (True) or stg_<entity>.")
    mart_prefixes: list[str] = Field(default_factory=lambda: ["fct_", "dim_"], description="Empty: marts unprefixed.")
    yml_layout: Literal["per_model", "per_folder"] = "per_model"
    tests_key: Literal["tests", "data_tests"] = "data_tests"
    test_arguments_key: bool = Field(default=True, description="Generic test arguments under 'arguments:'.")


class ProjectInventory(Contract):
    """What the user's dbt project already holds, from ``dbt parse`` (offline): the catalog proposals build on."""

    name: str
    dbt_version_required: list[str] = Field(default_factory=list)
    model_paths: list[str] = Field(default_factory=lambda: ["models"])
    seed_paths: list[str] = Field(default_factory=lambda: ["seeds"])
    test_paths: list[str] = Field(default_factory=lambda: ["tests"])
    macro_paths: list[str] = Field(default_factory=lambda: ["macros"])
    packages_install_path: str = "dbt_packages"
    packages: list[str] = Field(default_factory=list, description="Installed package (project) names.")
    sources: list[InventorySource] = Field(default_factory=list)
    seeds: list[InventorySeed] = Field(default_factory=list)
    models: list[InventoryModel] = Field(default_factory=list)
    tests: list[InventoryTest] = Field(default_factory=list)
    conventions: ProjectConventions = Field(default_factory=ProjectConventions)

    def model(self, name: str) -> InventoryModel | None:
        """The project model called ``name`` or None."""
        return next((m for m in self.models if m.name == name), None)

    def declared_keys(self, node: str) -> list[str]:
        """Columns of ``node`` ('model:x') the project tests both unique and not_null."""
        unique = {t.column for t in self.tests if t.node == node and t.kind == "unique" and t.column}
        return sorted(c for c in unique if any(t.node == node and t.kind == "not_null" and t.column == c
                                               for t in self.tests))

    @property
    def is_empty(self) -> bool:
        """True for a project without models, seeds or sources (dbt's style guide applies)."""
        return not (self.models or self.seeds or self.sources)


class RelationClass(Contract):
    """A warehouse relation classified against the project inventory."""

    schema_name: str
    name: str
    origin: Literal["raw", "source", "seed", "model"]
    node: str | None = Field(default=None, description="'model:x', 'seed:x' or 'source:s.t'.")
    covered_by: list[str] = Field(default_factory=list, description="Project models reading this relation.")


WarehouseProfile.model_rebuild()


# --------------------------------------------------------------------------- review loop (issue 17)


class Feedback(Contract):
    """One piece of reviewer feedback a revision answers: a comment, a review, a failed check, or local text."""

    id: str = Field(description="Stable id: 'review_comment:12', 'review:3', 'issue_comment:7', 'check:9', 'local:<sha>'.")
    kind: Literal["review_comment", "review", "issue_comment", "check", "local"]
    author: str = ""
    body: str = Field(description="The text, cleaned of control/bidi characters. Untrusted data.")
    path: str | None = Field(default=None, description="File a line comment is on.")
    line: int | None = None
    node: str | None = Field(default=None, description="For a failed check: the failing dbt node's name.")


ChangeKind = Literal["rename_column", "drop_measure", "add_measure", "grain", "filter", "breakdown",
                     "materialization", "add_test", "remove_test", "exclude_rows", "repair"]


class ChangeRequest(Contract):
    """One change request parsed from feedback, in the grammar the deterministic brain honours."""

    kind: ChangeKind
    feedback_id: str
    text: str = Field(description="The sentence it was read from.")
    column: str | None = None
    value: str | None = Field(default=None, description="New name, grain, materialization, test name or value.")
    model: str | None = Field(default=None, description="Target model; None = the proposal's mart.")


class FeedbackOutcome(Contract):
    """What a revision did about one piece of feedback; ``reply`` is posted as the answer to it."""

    feedback_id: str
    status: Literal["applied", "refused", "ignored"]
    reply: str
    changes: list[ChangeRequest] = Field(default_factory=list)


class RevisionState(Contract):
    """Kept on the branch (``proposals/<slug>.revisions.json``): what every revision round applied."""

    proposal_id: str
    request: str = Field(description="The original request of the proposal.")
    edits: list[ChangeRequest] = Field(default_factory=list, description="Applied change requests, in order.")
    handled: list[str] = Field(default_factory=list, description="Feedback ids already answered.")
    rounds: int = 0


class SchemaChange(Contract):
    """A column added, removed or retyped between the base build and the head build."""

    column: str
    change: Literal["added", "removed", "retyped"]
    before: str | None = None
    after: str | None = None


class ModelDiff(Contract):
    """The data diff of one model, base branch build → head build (the sandbox)."""

    model: str
    status: Literal["added", "changed", "unchanged", "removed"]
    key: list[str] = Field(default_factory=list, description="Columns the value diff joins on.")
    schema_changes: list[SchemaChange] = Field(default_factory=list)
    base_rows: int | None = None
    head_rows: int
    rows_added: int | None = None
    rows_removed: int | None = None
    rows_changed: int | None = None
    changed_columns: dict[str, int] = Field(default_factory=dict, description="Column → rows whose value changed.")
    examples: list[dict[str, str]] = Field(default_factory=list, description="A few changed rows, PII masked.")
    masked_columns: list[str] = Field(default_factory=list)
    note: str = ""


class Revision(Contract):
    """One `revise` round: the feedback read, what was done about each, the follow-up commit and its data diff."""

    proposal_id: str
    branch: str
    status: Literal["revised", "no_new_feedback", "nothing_applied", "failed", "interrupted"]
    round: int = 0
    request: str = ""
    feedback: list[Feedback] = Field(default_factory=list)
    outcomes: list[FeedbackOutcome] = Field(default_factory=list)
    base: str | None = None
    tip_before: str | None = None
    commit: str | None = None
    remote_commit: str | None = None
    files: list[str] = Field(default_factory=list)
    deleted: list[str] = Field(default_factory=list)
    diffs: list[ModelDiff] = Field(default_factory=list)
    pr_number: int | None = None
    diff_base: str | None = Field(default=None, description="The base branch commit the data diff compares with.")
    head_warehouse: str | None = Field(default=None, description="The sandbox DuckDB holding the revised build.")
    base_warehouse: str | None = Field(default=None, description="The sandbox DuckDB holding the base build, if built.")
    build_summary: str = Field(default="", description="The revised proposal's dbt build, e.g. '79/79 nodes passed'.")
    local_branch: str = Field(default="", description="With --pr: whether the local branch was moved to the new "
                                                        "commit, and why not.")
    revision_dir: str | None = None
    error: str | None = None


Proposal.model_rebuild()  # after every contract it refers to (PullRequestRef, ModelDiff)
