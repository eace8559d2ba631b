"""Reading list and object answers: pagination styles, models, unexpected shapes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pydantic

from .errors import ServerError

M = TypeVar("M", bound=pydantic.BaseModel)


def page_data(data: Any) -> Any:
    """A list answer as {items, pagination}: Laravel's paginator (mihu-api.md §0.2 style A)
    is turned into style B."""
    if isinstance(data, dict) and "items" not in data and isinstance(data.get("data"), list):
        return {"items": data["data"], "pagination": data}
    return data


def pages(fetch: Callable[[int], Any]) -> Iterator[Any]:
    """Every item of every page; ``fetch(page)`` returns an object with items and pagination."""
    page = 1
    while True:
        result = fetch(page)
        yield from result.items
        if not result.items or not result.pagination.has_more and page >= result.pagination.last_page:
            return
        page += 1


def parse(model: type[M], data: Any) -> M:
    """A response as ``model``; an unexpected shape is the server's fault (exit 4), not a
    traceback."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "(body)"
        raise ServerError(f"the API answered an unexpected {model.__name__} ({where}: "
                          f"{first['msg']})") from None
