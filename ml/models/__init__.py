"""The model families behind one interface (ml.models.base.Model)."""

import warnings

with warnings.catch_warnings():
    # Importing MLflow's pyfunc module warns (in color) about type hints inside MLflow's own code.
    warnings.filterwarnings("ignore", message=".*Any type hint is inferred as AnyType", category=UserWarning)
    import mlflow.pyfunc  # noqa: F401
