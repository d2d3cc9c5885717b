import pytest
from pydantic import ValidationError

from dataeng_crew.contracts import ColumnSpec, ModelSpec, TestSpec


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (TestSpec(name="unique", column="id"), "unique"),
        (TestSpec(name="accepted_values", column="s", arguments={"values": ["a", "b"]}),
         {"accepted_values": {"arguments": {"values": ["a", "b"]}}}),
        (TestSpec(name="not_null", column="x", severity="warn"), {"not_null": {"config": {"severity": "warn"}}}),
        (TestSpec(name="relationships", column="c", arguments={"to": "ref('p')", "field": "id"}),
         {"relationships": {"arguments": {"to": "ref('p')", "field": "id"}}}),
    ],
)
def test_test_spec_renders_dbt_1_10_form(spec, expected):
    assert spec.to_yaml() == expected


def _model(**kw):
    base = dict(name="fct_x", layer="marts", materialization="table", description="d", sql="select 1 as a",
                columns=[ColumnSpec(name="a", description="a")], folder="marts")
    return ModelSpec(**{**base, **kw})


def test_model_path_follows_folder():
    assert _model().path == "models/marts/fct_x.sql"


@pytest.mark.parametrize("bad", ["Fct_X", "1fct", "fct-x", "../evil", "fct x", ""])
def test_model_name_must_be_snake_case(bad):
    with pytest.raises(ValidationError):
        _model(name=bad)


def test_contracts_refuse_unknown_keys():
    with pytest.raises(ValidationError):
        ColumnSpec(name="a", description="a", pre_hook="drop table x")


def test_layer_is_constrained():
    with pytest.raises(ValidationError):
        _model(layer="bronze")
