"""``system.toml``: what it declares comes back typed, and a wrong entry stops with its name."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from flotilla.declaration import DeclarationError, Route, find, load, parse

ROOT = Path(__file__).resolve().parents[3]


def shop(**changes: Any) -> dict[str, Any]:
    """A small valid declaration: an issuer, a shop that calls it, a worker; then ``changes``."""
    services: dict[str, Any] = {
        "accounts": {"summary": "accounts", "port": 8001, "database": "accounts",
                     "routes": ["/api/v1/accounts", {"path": "/api/v1/tokens", "limit": "tokens"}]},
        "shop": {"summary": "shop", "port": 8002, "calls": ["accounts"], "client": True,
                 "internal_routes": ["/api/v1/internal"],
                 "background": [{"name": "shop-relay", "command": ["outbox", "relay"],
                                 "ready": "started"}]},
        "mailer": {"summary": "mail", "database": "mailer",
                   "jobs": [{"name": "mailer-queues", "command": ["tasks", "declare-queues"]}]},
    }  # fmt: skip
    for name, entry in changes.items():
        services[name] = {**services.get(name, {}), **entry}
    return {"system": {"issuer": "accounts"}, "services": services}


def test_a_declaration_comes_back_typed_in_its_order() -> None:
    system = parse(shop())
    assert system.names == ("accounts", "shop", "mailer")
    assert [service.name for service in system.web] == ["accounts", "shop"]
    assert system.databases == ("accounts", "mailer")
    assert system["accounts"].routes[1] == Route("/api/v1/tokens", "tokens")
    assert system.owner("/api/v1/accounts/7").name == "accounts"
    assert system["shop"].url_setting == "SHOP_URL"
    assert [job.name for job in system["mailer"].commands] == ["mailer-queues"]
    assert system.clients == (system["shop"],)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"shop": {"port": 8001}}, "the same port twice: 8001"),
        ({"mailer": {"database": "accounts"}}, "the same database twice"),
        ({"shop": {"calls": ["payments"]}}, "services.shop.calls: 'payments'"),
        ({"shop": {"calls": ["mailer"]}}, "not another web service"),
        ({"shop": {"colour": "blue"}}, "services.shop: unknown keys colour"),
        ({"shop": {"routes": ["/api/v1/accounts"]}}, "the same route twice"),
        ({"shop": {"routes": [{"path": "/x", "limit": "slow"}]}}, "services.shop.routes"),
        ({"mailer": {"routes": ["/api/v1/mail"]}}, "routes need a port"),
        ({"Shop": {"summary": "upper case"}}, "one lowercase word"),
        ({"shop": {"background": [{"name": "relay", "command": ["x"], "ready": ""}]}}, "named"),
        ({"mailer": {"port": "8003"}}, "services.mailer: missing or malformed port"),
    ],
)
def test_a_wrong_entry_is_refused_with_its_name(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(DeclarationError, match=re.escape(message)):
        parse(shop(**changes))


def test_a_service_without_its_summary_is_refused() -> None:
    data = shop()
    del data["services"]["mailer"]["summary"]
    with pytest.raises(
        DeclarationError, match=re.escape("services.mailer: missing or malformed summary")
    ):
        parse(data)


def test_the_issuer_must_be_a_declared_web_service() -> None:
    with pytest.raises(DeclarationError, match=re.escape("system.issuer 'mailer'")):
        parse({**shop(), "system": {"issuer": "mailer"}})


def test_the_file_is_found_from_any_directory_below_it(tmp_path: Path) -> None:
    (tmp_path / "system.toml").write_text(
        '[system]\nissuer = "a"\n[services.a]\nsummary = "a"\nport = 1\n'
    )
    below = tmp_path / "services" / "a" / "src"
    below.mkdir(parents=True)
    assert find(below) == tmp_path / "system.toml"
    assert load(find(below)).names == ("a",)


def test_a_file_that_is_not_toml_names_itself(tmp_path: Path) -> None:
    (tmp_path / "system.toml").write_text("[services.a\n")
    with pytest.raises(DeclarationError, match=re.escape("system.toml:")):
        load(tmp_path / "system.toml")


def test_the_repositorys_own_declaration_is_valid() -> None:
    system = load(ROOT / "system.toml")
    assert system.issuer == "users"
    assert "notifications" in system.names
