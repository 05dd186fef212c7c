"""Problem types: each owns its loss step and outputs (see :mod:`trainflow.problems.base`).

Importing this package registers the built-in ``classification`` and ``regression`` types in
``trainflow.registry.problems`` and declares ``forecasting`` (imported when a forecasting run
builds it).
"""

from trainflow import registry
from trainflow.problems.base import Problem, ProblemConfig, SupervisedProblem
from trainflow.problems.supervised import ClassificationProblem, RegressionProblem

registry.problems.declare("forecasting", ProblemConfig, "trainflow.problems.forecasting:ForecastingProblem")

__all__ = ["ClassificationProblem", "Problem", "ProblemConfig", "RegressionProblem", "SupervisedProblem"]
