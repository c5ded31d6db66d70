"""Limit strings (``"5/minute;50/day"``): parsed once, checked at start-up, read from settings.

A :class:`Bucket` is what one request is counted against: the parsed limits, a scope (the
view) and a key (the client).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator

from flotilla.config import ServiceSettings
from flotilla.settings import current_settings

if TYPE_CHECKING:
    from limits import RateLimitItem


@functools.lru_cache(maxsize=256)
def parse_limits(text: str) -> tuple[RateLimitItem, ...]:
    """``"2/second;100 per day"`` as limit items, shortest window first.

    Shortest first, because counting stops at the first refusal: a burst refused by the
    per-second limit then does not use up the daily one. The ``limits`` library is imported
    here, by the first limit string parsed: a service that declares no limit never loads it
    (about 1.3 MiB of a worker's memory, with its dependencies).
    """
    from limits import parse_many  # noqa: PLC0415 - loaded by the first limit, see above

    try:
        items = parse_many(text)
    except ValueError as error:
        raise ValueError(f"invalid rate limit {text!r}: {error}") from error
    return tuple(sorted(items, key=lambda item: item.get_expiry()))


def _valid_limits(text: str) -> str:
    parse_limits(text)  # raises ValueError, which pydantic reports with the setting's name
    return text


RateLimitString = Annotated[str, AfterValidator(_valid_limits)]
"""Type of a setting holding limits, e.g. ``"5/minute;50/day"``: a typo stops start-up."""


def limits_of_setting(name: str) -> tuple[RateLimitItem, ...]:
    """The limits in the current app's setting ``name``, read at request time."""
    settings = current_settings(ServiceSettings)
    text = getattr(settings, name, None)
    if not isinstance(text, str):
        raise TypeError(f"rate_limit({name!r}) names no setting holding a limits string")
    return parse_limits(text)


@dataclass(frozen=True)
class Bucket:
    """What one request is counted against: limits, within a scope, for one key."""

    items: tuple[RateLimitItem, ...]
    scope: str
    key: str
