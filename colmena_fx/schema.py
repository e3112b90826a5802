"""The base of every pydantic model in colmena-fx."""

from __future__ import annotations

from pydantic import BaseModel
from pydantic import ConfigDict


class StrictModel(BaseModel):
    """A model that refuses unknown keys: a misspelled setting is an error."""

    model_config = ConfigDict(extra="forbid")
