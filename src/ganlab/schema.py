"""Building blocks of the strict config schema, shared by `ganlab.config` and every module that
declares its own options (architectures, samplers). No project imports: anything may import this."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError


class ConfigError(ValueError):
    """Invalid parameters: the message names the key and what is allowed."""


def _reject_strings_and_bools(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, str):
        raise ValueError(
            f"expected a number, got the string {value!r} "
            "(YAML 1.1 reads exponent floats without a dot as strings: write e.g. 2.0e-4)"
        )
    return value


def _reject_non_integers(value: Any) -> Any:
    value = _reject_strings_and_bools(value)
    if isinstance(value, float):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


Number = Annotated[float, BeforeValidator(_reject_strings_and_bools)]
Integer = Annotated[int, BeforeValidator(_reject_non_integers)]
PositiveFloat = Annotated[Number, Field(gt=0)]
PositiveInt = Annotated[Integer, Field(gt=0)]
NonNegativeInt = Annotated[Integer, Field(ge=0)]


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, values are not coerced from strings."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


StrictModel = TypeVar("StrictModel", bound=BaseModel)


def validated(model: type[StrictModel], **values: Any) -> StrictModel:
    """`model(**values)` for a library function's keyword arguments: a ValidationError becomes one ValueError
    naming each bad key (`psi: Input should be greater than 0, got 0.0`), with the allowed values of a choice
    (`mode: got 'thresh'; allowed: percentile, fixed, ...`)."""
    try:
        return model(**values)
    except ValidationError as e:
        raise ValueError("; ".join(_describe(model, err) for err in e.errors())) from None


def _describe(model: type[BaseModel], err: Any) -> str:
    key = ".".join(str(p) for p in err["loc"])
    field = model.model_fields.get(key)
    if err["type"] == "literal_error" and field is not None and get_origin(field.annotation) is Literal:
        return f"{key}: got {err['input']!r}; allowed: {', '.join(str(a) for a in get_args(field.annotation))}"
    return f"{key}: {err['msg'].removeprefix('Value error, ')}, got {err['input']!r}"
