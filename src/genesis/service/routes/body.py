"""Request bodies: JSON parsing and validation with errors that name the problem."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from quart import request

from genesis.service.errors import APIError

M = TypeVar("M", bound=BaseModel)


def describe_validation_error(error: ValidationError) -> tuple[str, str | None]:
    """A message naming the first invalid field, and that field as OpenAI's `param`."""
    problems = error.errors(include_url=False, include_input=False)
    first = problems[0]
    param = ".".join(str(part) for part in first["loc"]) or None
    where = f"'{param}'" if param else "the request body"
    message = f"Invalid value for {where}: {first['msg']}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
    return message, param


async def parse_body(model: type[M]) -> M:
    # Parsed whatever the Content-Type says: clients (and curl users) often omit it.
    raw = await request.get_data(cache=True, as_text=False)
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise APIError(
            400, f"The request body is not valid JSON: {error}", code="invalid_json"
        ) from None
    try:
        return model.model_validate(data)
    except ValidationError as error:
        message, param = describe_validation_error(error)
        raise APIError(400, message, param=param, code="invalid_value") from None
