"""The base of every stage's settings class: unknown keys are errors, values are frozen."""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    # A typo must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid", frozen=True)
