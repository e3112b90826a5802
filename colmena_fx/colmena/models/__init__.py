"""Colmena's result and resource models (`colmena.models`)."""

from __future__ import annotations

from colmena_fx.colmena.models.results import FailureInformation
from colmena_fx.colmena.models.results import ResourceRequirements
from colmena_fx.colmena.models.results import Result
from colmena_fx.colmena.models.results import SerializationMethod
from colmena_fx.colmena.models.results import TimeSpans
from colmena_fx.colmena.models.results import Timestamps
from colmena_fx.colmena.models.results import WorkerInformation

__all__ = [
    "FailureInformation",
    "ResourceRequirements",
    "Result",
    "SerializationMethod",
    "TimeSpans",
    "Timestamps",
    "WorkerInformation",
]
