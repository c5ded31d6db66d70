"""The files of a new service's own directory, rendered from the templates beside this module.

Each template under ``templates/service/`` is named as its file will be under
``services/<service>/``, plus ``.tmpl``, so that no linter, type checker or test runner takes
it for the chassis' own code. A path segment holding ``__service__`` or ``__resources__``
takes the name; in the text, ``{{service}}``, ``{{Service}}``, ``{{resource}}``,
``{{Resource}}``, ``{{resources}}`` and ``{{Resources}}`` are replaced with plain
:meth:`str.replace`: no template language, so the ``${...}`` of Alembic's ``script.py.mako``
passes through untouched.

What comes out passes ``ruff check``, ``ruff format --check`` and ``mypy --strict`` as it is,
for any names :class:`Names` and :func:`service_files` accept. The templates write every line
that grows with a name either short enough for the longest name or exploded, with a trailing
comma the formatter keeps; and the service's own imports and the chassis' are put in the
order ruff's isort wants, which depends on the name (``billing`` sorts before ``flotilla``,
``inventory`` after).
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re
import sys
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

from flotilla.declaration import NAME as SERVICE_NAME

TEMPLATES = files(__package__) / "templates" / "service"
SUFFIX = ".tmpl"
SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z][a-z0-9]*)*\Z")
"""A resource's name: lowercase words joined by ``_``, each starting with a letter, so that
its CamelCase form tells the words apart (``item_2`` and ``item2`` would both be ``Item2``)."""
MAX_LENGTH = 20
"""Longest name: the templates' lines fit in 100 columns with three names of this length."""
RESERVED_SERVICES = frozenset({"flotilla", "tests", "migrations"})
"""Packages a service may not be called: the chassis, and directories every service has."""
LEFTOVER = re.compile(r"\{\{\s*\w+\s*\}\}")


@dataclass(frozen=True)
class Names:
    """The names a new service is rendered with, checked when made (:class:`ValueError`).

    ``service`` is one lowercase word, as ``system.toml`` requires: the Python package, the
    database and the host in URLs (``inventory``). ``resource`` and ``resources`` are the
    singular and plural of what it serves, in snake_case (``item``, ``items``); the plural
    names the route ``/api/v1/<resources>`` and the table. The CamelCase forms are the
    properties named as their placeholders (``Service``, ``Resource``, ``Resources``).
    """

    service: str
    resource: str
    resources: str

    def __post_init__(self) -> None:
        _check_name("service", self.service, SERVICE_NAME, "one lowercase word, e.g. inventory")
        if self.service in sys.stdlib_module_names or self.service in RESERVED_SERVICES:
            raise ValueError(f"service {self.service!r} would hide a package of that name")
        for role, value in (("resource", self.resource), ("resources", self.resources)):
            _check_name(role, value, SNAKE_CASE, "snake_case, e.g. line_item")
        if self.resources in vars(builtins):
            raise ValueError(f"resources {self.resources!r} would hide Python's built-in")
        if self.resource == self.resources:
            raise ValueError("resource and resources must differ: singular and plural")

    @property
    def Service(self) -> str:  # noqa: N802 - named as its placeholder, {{Service}}
        """``service`` in CamelCase: ``Inventory``."""
        return _camel_case(self.service)

    @property
    def Resource(self) -> str:  # noqa: N802 - named as its placeholder, {{Resource}}
        """``resource`` in CamelCase: ``LineItem``."""
        return _camel_case(self.resource)

    @property
    def Resources(self) -> str:  # noqa: N802 - named as its placeholder, {{Resources}}
        """``resources`` in CamelCase: ``LineItems``."""
        return _camel_case(self.resources)


def _check_name(role: str, value: str, pattern: re.Pattern[str], expected: str) -> None:
    if not pattern.match(value) or keyword.iskeyword(value):
        raise ValueError(f"{role} {value!r} is not a valid name: use {expected}")
    if len(value) > MAX_LENGTH:
        raise ValueError(f"{role} {value!r} is longer than {MAX_LENGTH} characters")


def _camel_case(name: str) -> str:
    return "".join(word.capitalize() for word in name.split("_"))


def service_files(names: Names) -> dict[str, str]:
    """Relative path under ``services/<service>/`` -> file content, for ``names``.

    Raises :class:`ValueError` if the names would give two files one path (``resources``
    called ``contract`` would put their tests in ``test_contract.py``) or bind one name twice
    at the top of a module (a ``resource`` called ``page`` would hide the chassis' ``Page``).
    """
    rendered: dict[str, str] = {}
    for parts, template in _templates(TEMPLATES):
        path = "/".join(_render_path(part, names) for part in parts)
        if path in rendered:
            raise ValueError(f"two templates would both write {path}; choose other names")
        text = _render_text(template.read_text(encoding="utf-8"), names)
        if leftover := LEFTOVER.search(text):
            raise ValueError(f"{path}: unknown placeholder {leftover.group()}")
        if path.endswith(".py"):
            text = _sort_first_party(text, {"flotilla", names.service})
            _check_each_name_bound_once(path, text)
        rendered[path] = text
    return rendered


def _templates(
    directory: Traversable, parts: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Traversable]]:
    """Each template under ``directory``: its path's parts without the suffix, and itself."""
    for entry in sorted(directory.iterdir(), key=lambda entry: entry.name):
        if entry.is_dir():
            yield from _templates(entry, (*parts, entry.name))
        elif entry.name.endswith(SUFFIX):
            yield (*parts, entry.name.removesuffix(SUFFIX)), entry


def _render_path(part: str, names: Names) -> str:
    return part.replace("__service__", names.service).replace("__resources__", names.resources)


def _render_text(text: str, names: Names) -> str:
    for placeholder, value in _placeholders(names).items():
        text = text.replace(placeholder, value)
    return text


def _placeholders(names: Names) -> dict[str, str]:
    """Each placeholder of the templates and its value."""
    return {
        "{{service}}": names.service,
        "{{Service}}": names.Service,
        "{{resource}}": names.resource,
        "{{Resource}}": names.Resource,
        "{{resources}}": names.resources,
        "{{Resources}}": names.Resources,
    }


def _sort_first_party(source: str, packages: Collection[str]) -> str:
    """``source`` with each run of adjacent ``from <package> import`` statements in order.

    ruff's isort keeps the chassis and the service's own package in one section, sorted by
    module, so which comes first depends on the service's name; the templates write
    ``flotilla`` first. Statements move whole, so parenthesized ones stay intact.
    """
    lines = source.splitlines(keepends=True)
    ordered = list(lines)
    for run in _first_party_runs(ast.parse(source).body, packages):
        start, end = run[0].lineno - 1, _last_line(run[-1])
        moved = sorted(run, key=lambda statement: statement.module or "")
        ordered[start:end] = [
            line for node in moved for line in lines[node.lineno - 1 : _last_line(node)]
        ]
    return "".join(ordered)


def _first_party_runs(
    body: list[ast.stmt], packages: Collection[str]
) -> Iterator[list[ast.ImportFrom]]:
    """Runs of top-level ``from`` imports of ``packages`` on adjacent lines."""
    run: list[ast.ImportFrom] = []
    for node in body:
        if not (isinstance(node, ast.ImportFrom) and _imports_from(node, packages)):
            if run:
                yield run
            run = []
        elif run and node.lineno != _last_line(run[-1]) + 1:
            yield run
            run = [node]
        else:
            run.append(node)
    if run:
        yield run


def _imports_from(node: ast.ImportFrom, packages: Collection[str]) -> bool:
    return node.level == 0 and (node.module or "").partition(".")[0] in packages


def _last_line(node: ast.stmt) -> int:
    return node.end_lineno or node.lineno


def _check_each_name_bound_once(path: str, source: str) -> None:
    """Refuse a module whose top level binds a name twice: one of the names given hid another."""
    seen: set[str] = set()
    for node in ast.parse(source).body:
        for name in _bound_names(node):
            if name in seen:
                raise ValueError(f"{path}: the names given would bind {name!r} twice")
            seen.add(name)


def _bound_names(node: ast.stmt) -> Iterator[str]:
    """The names a top-level statement binds (imports, definitions, plain assignments)."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield from (alias.asname or alias.name.partition(".")[0] for alias in node.names)
    elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        yield node.name
    elif isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        yield from (target.id for target in targets if isinstance(target, ast.Name))
