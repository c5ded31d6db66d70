"""Loading settings (one line naming the variable on failure) and documenting them."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, TypeVar

from flask.cli import load_dotenv as _flask_load_dotenv
from flask.helpers import get_load_dotenv
from pydantic import ValidationError
from pydantic_settings import BaseSettings

EXIT_CONFIGURATION = 3
"""Exit status for bad settings: Gunicorn's WORKER_BOOT_ERROR, so its master stops too."""


class ConfigurationError(SystemExit):
    """Start-up stops because of a setting; the message is one line naming the variable.

    A :class:`SystemExit` so that Gunicorn, Flask's CLI and ``python -m`` exit without a
    traceback that would bury the message, with status 3 so that a Gunicorn master whose
    workers load the app (no preload) halts instead of restarting them forever.
    """

    def __init__(self, message: str) -> None:
        super().__init__(EXIT_CONFIGURATION)
        self.message = f"configuration error: {message}"

    def __str__(self) -> str:
        return self.message


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_dotenv() -> bool:
    """Put ``.env`` (and ``.flaskenv``) into the environment as the ``flask`` command does.

    The ``flask`` command reads these files before it loads the app, a web server or a
    ``python -c`` does not; a ``.env`` then configured the migrations, the relays and the
    worker but not the service they serve. Every process reads its settings through
    :func:`load_settings`, which calls this first, so all of them see the same variables:
    Flask's own function with Flask's rules (the nearest file up from the working directory,
    variables already set win), and ``FLASK_SKIP_DOTENV=1`` turns the files off everywhere.
    True if a file set at least one variable.
    """
    if not get_load_dotenv():
        return False
    return _flask_load_dotenv()


def load_settings(settings_class: type[SettingsT], **overrides: Any) -> SettingsT:
    """Read settings from the environment (and ``.env``, see :func:`load_dotenv`), or stop
    start-up with one line naming the variable."""
    load_dotenv()
    try:
        return settings_class(**overrides)
    except ValidationError as error:
        stop = ConfigurationError(_describe(error))
    print(stop, file=sys.stderr, flush=True)  # noqa: T201 - logging may not be set up yet
    raise stop


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False):
        name = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{name}: {message}" if name else message)
    return "; ".join(problems)


def settings_table(
    settings_class: type[BaseSettings], *, besides: Iterable[type[BaseSettings]] = ()
) -> str:
    """The settings of ``settings_class`` as a Markdown table, minus those of ``besides``.

    A setting of ``besides`` is listed again only if ``settings_class`` changes its default or
    meaning.
    """
    inherited = {name: field for base in besides for name, field in base.model_fields.items()}
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for name, field in settings_class.model_fields.items():
        base = inherited.get(name)
        if base is not None and (base.default, base.description) == (
            field.default,
            field.description,
        ):
            continue
        default = field.get_default(call_default_factory=True)
        if isinstance(default, StrEnum):
            default = default.value
        shown = "*(empty)*" if default in ("", []) else f"`{default}`"
        if field.default_factory not in (None, list):
            shown = "*(computed)*"  # depends on the machine; the meaning says how
        rows.append(f"| `{_variable(settings_class, name)}` | {shown} | {field.description} |")
    return "\n".join(rows)


def _variable(settings_class: type[BaseSettings], name: str) -> str:
    """The environment variable that sets field ``name``."""
    alias = settings_class.model_fields[name].validation_alias
    if isinstance(alias, str):
        return alias
    return f"{settings_class.model_config.get('env_prefix', '')}{name}"
