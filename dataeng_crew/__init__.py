"""dataeng-crew: turn an analytics request into a validated dbt change and a pull request."""

__version__ = "0.1.0"
