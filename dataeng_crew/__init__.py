"""dataeng-crew: turn an analytics request into a validated dbt change and a pull request."""

import warnings

__version__ = "0.1.0"

# Great Expectations imports pyspark when it is installed (the [spark] extra), and pyspark warns about pandas 3 on
# import; neither the tool nor GX uses pyspark's pandas conversions (the Spark extract travels as Arrow).
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
