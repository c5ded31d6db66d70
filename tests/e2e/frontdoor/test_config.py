"""deploy/nginx/ rendered by scripts/nginx.py: placeholders, layout, certificate, checks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from cryptography import x509

import certificates  # scripts/, on pytest's path
import nginx
from flotilla.config import GranianSettings, GunicornSettings
from nginx import Tuning, Upstreams, render

from .conftest import ROOT

SOURCE = ROOT / "deploy" / "nginx"
UPSTREAMS = Upstreams(
    users=["127.0.0.1:8001"],
    catalog=["127.0.0.1:8002"],
    orders=["127.0.0.1:8003"],
    console=["127.0.0.1:8004"],
)


def test_placeholders_are_filled_and_nginx_variables_are_left_alone() -> None:
    template = "listen ${PORT};\nreturn 200 $request_id;\n"

    assert nginx.substitute(template, {"PORT": "8080"}) == "listen 8080;\nreturn 200 $request_id;\n"


def test_a_placeholder_with_several_values_repeats_its_line() -> None:
    template = "upstream u {\n    server ${ADDRESS} max_fails=1;\n}\n"

    rendered = nginx.substitute(template, {"ADDRESS": ["127.0.0.1:1", "unix:/run/u.sock"]})

    assert rendered == (
        "upstream u {\n    server 127.0.0.1:1 max_fails=1;\n"
        "    server unix:/run/u.sock max_fails=1;\n}\n"
    )


def test_an_unknown_placeholder_is_an_error_naming_it_and_its_line() -> None:
    with pytest.raises(nginx.TemplateError, match=r"line 2: no value for FLOTILLA_NOPE"):
        nginx.substitute("listen ${PORT};\nroot ${FLOTILLA_NOPE};\n", {"PORT": "80"})


@pytest.mark.parametrize("value", ["80; include /etc/passwd", "a b", "${PORT}", "a}", "$host", ""])
def test_a_value_that_is_not_one_nginx_word_is_refused(value: str) -> None:
    with pytest.raises(nginx.TemplateError, match="not a single nginx word"):
        nginx.substitute("listen ${PORT};\n", {"PORT": value})


def test_only_one_placeholder_of_a_line_may_have_several_values() -> None:
    with pytest.raises(nginx.TemplateError, match="only one placeholder"):
        nginx.substitute("${A} ${B}\n", {"A": ["1", "2"], "B": ["3", "4"]})


def test_templates_write_no_nginx_variable_with_braces() -> None:
    templates = [*SOURCE.glob("templates/*.template"), *SOURCE.glob("tls/*.template")]
    braced = {name for path in templates for name in re.findall(r"\$\{([^}]*)\}", path.read_text())}

    assert templates
    assert braced
    assert all(re.fullmatch(r"FLOTILLA_[A-Z0-9_]+", name) for name in braced), braced


def test_static_files_have_no_placeholders() -> None:
    includes = [SOURCE / "nginx.conf", *(SOURCE / "flotilla").glob("*.conf")]

    assert includes
    assert [path.name for path in includes if "${" in path.read_text()] == []


@pytest.mark.parametrize("tls_port", [None, 8443])
def test_the_rendered_configuration_stays_inside_its_directory(
    tmp_path: Path, tls_port: int | None
) -> None:
    config = render(tmp_path, UPSTREAMS, port=8080, tls_port=tls_port, static=tmp_path / "s")

    rendered = [config, *(tmp_path / "conf.d").glob("*.conf")]
    lines = [line for path in rendered for line in path.read_text().splitlines()]
    text = "\n".join(line for line in lines if not line.startswith("load_module "))  # read only
    assert "${" not in text
    assert not re.search(r"(?<![\w/])/(etc|var|run|usr)/", text), "a path outside the directory"
    assert {path.name for path in (tmp_path / "flotilla").iterdir()} == {
        path.name for path in (SOURCE / "flotilla").iterdir()
    }


def test_rendering_again_replaces_the_earlier_configuration(tmp_path: Path) -> None:
    render(tmp_path, UPSTREAMS, port=8080, tls_port=8443)
    assert " ssl " in (tmp_path / "conf.d" / "site.conf").read_text()
    (tmp_path / "conf.d" / "retired.conf").write_text("server { listen 9999; }\n")

    render(tmp_path, UPSTREAMS, port=8080)

    assert not (tmp_path / "conf.d" / "retired.conf").exists()

    site = (tmp_path / "conf.d" / "site.conf").read_text()
    assert " ssl " not in site
    assert "listen 127.0.0.1:8080 default_server reuseport;" in site


def test_static_files_come_from_the_console_packages_directory(tmp_path: Path) -> None:
    console_static = ROOT / "services" / "console" / "src" / "console" / "static"

    render(tmp_path, UPSTREAMS, port=8080)

    assert nginx.static_root() == console_static
    assert f"root {console_static};" in (tmp_path / "conf.d" / "site.conf").read_text()


@pytest.mark.parametrize("tls_port", [None, 8443])
def test_brotli_is_loaded_and_configured_together_or_not_at_all(
    tmp_path: Path, tls_port: int | None
) -> None:
    def loaded() -> list[str]:
        lines = (tmp_path / "nginx.conf").read_text().splitlines()
        return [line for line in lines if line.startswith("load_module ")]

    render(tmp_path, UPSTREAMS, port=8080, tls_port=tls_port, brotli=True)
    assert loaded() == [f"load_module {nginx.BROTLI_MODULE};"]
    assert (tmp_path / "conf.d" / "brotli.conf").read_text() == "include flotilla/brotli.conf;\n"

    render(tmp_path, UPSTREAMS, port=8080, tls_port=tls_port, brotli=False)

    assert loaded() == []
    assert not (tmp_path / "conf.d" / "brotli.conf").exists()
    assert "brotli" not in "".join(path.read_text() for path in (tmp_path / "conf.d").iterdir())


@pytest.mark.parametrize("installed", [True, False])
def test_brotli_is_used_by_default_where_its_module_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installed: bool
) -> None:
    module = tmp_path / "ngx_http_brotli_filter_module.so"
    if installed:
        module.write_bytes(b"")
    monkeypatch.setattr(nginx, "BROTLI_MODULE", module)

    render(tmp_path / "nginx", UPSTREAMS, port=8080)

    assert (
        f"load_module {module};" in (tmp_path / "nginx" / "nginx.conf").read_text()
    ) is installed
    assert (tmp_path / "nginx" / "conf.d" / "brotli.conf").exists() is installed


def test_each_replica_is_a_server_and_its_own_backup(tmp_path: Path) -> None:
    replicas = Upstreams(
        users=["127.0.0.1:8001", "127.0.0.1:8011"],
        catalog=["127.0.0.1:8002"],
        orders=["unix:o.sock"],
        console=["127.0.0.1:8004"],
    )

    render(tmp_path, replicas, port=8080, tuning=Tuning(api_rate="5r/s"))

    rendered = (tmp_path / "conf.d" / "flotilla.conf").read_text()
    users = rendered.split("upstream flotilla_users {")[1].split("}")[0]
    assert [line.strip() for line in users.splitlines() if "server " in line] == [
        "server 127.0.0.1:8001 max_fails=1 fail_timeout=10s;",
        "server 127.0.0.1:8011 max_fails=1 fail_timeout=10s;",
        "server 127.0.0.1:8001 backup max_fails=0;",
        "server 127.0.0.1:8011 backup max_fails=0;",
    ]
    assert "server unix:o.sock max_fails=1 fail_timeout=10s;" in rendered
    assert "zone=flotilla_api:10m rate=5r/s;" in rendered


def test_workers_run_as_the_user_who_starts_nginx_when_that_is_root(tmp_path: Path) -> None:
    config = render(tmp_path, UPSTREAMS, port=8080)

    user_lines = [line for line in config.read_text().splitlines() if line.startswith("user ")]
    assert user_lines == (["user root root;"] if os.geteuid() == 0 else [])


def test_the_command_runs_nginx_in_the_foreground_rooted_in_the_directory(tmp_path: Path) -> None:
    config = render(tmp_path, UPSTREAMS, port=8080)

    argv = nginx.command(config)

    assert argv[argv.index("-p") + 1] == f"{tmp_path.resolve()}/"
    assert argv[argv.index("-c") + 1] == str(config)
    assert argv[-2:] == ["-g", "daemon off;"]


def test_upstreams_need_one_or_more_addresses() -> None:
    with pytest.raises(ValueError, match="users"):
        Upstreams(**{**UPSTREAMS.addresses, "users": "127.0.0.1:8001"})
    with pytest.raises(ValueError, match="orders"):
        Upstreams(**{**UPSTREAMS.addresses, "orders": []})


def test_upstreams_name_every_declared_web_service_and_no_other() -> None:
    with pytest.raises(ValueError, match="exactly users, catalog, orders, console"):
        Upstreams(users=["127.0.0.1:8001"], catalog=["127.0.0.1:8002"])
    with pytest.raises(ValueError, match="exactly"):
        Upstreams(**UPSTREAMS.addresses, payments=["a:4"])


def test_the_development_certificate_is_self_signed_for_this_machine(tmp_path: Path) -> None:
    files = certificates.ensure_certificate(tmp_path)

    certificate = x509.load_pem_x509_certificate(files.certificate.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [IPv4Address("127.0.0.1")]
    assert certificate.issuer == certificate.subject
    assert files.key.stat().st_mode & 0o777 == 0o600
    assert certificates.ensure_certificate(tmp_path) == files
    assert x509.load_pem_x509_certificate(files.certificate.read_bytes()) == certificate


def test_a_certificate_close_to_its_end_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(certificates, "CERTIFICATE_LIFETIME", timedelta(days=10))
    old = certificates.ensure_certificate(tmp_path).certificate.read_bytes()
    monkeypatch.undo()

    files = certificates.ensure_certificate(tmp_path)

    assert files.certificate.read_bytes() != old
    assert files.key.stat().st_mode & 0o777 == 0o600


def test_the_command_line_renders_a_configuration(tmp_path: Path) -> None:
    arguments = ["--users", "127.0.0.1:8001", "--catalog", "127.0.0.1:8002"]
    arguments += ["--console", "127.0.0.1:8004", "--static-root", str(tmp_path / "static")]
    result = subprocess.run(
        [
            *(sys.executable, "scripts/nginx.py", "render", "--dir", str(tmp_path)),
            *("--port", "8080", *arguments, "--orders", "127.0.0.1:8003", "127.0.0.1:8013"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [*nginx.command(tmp_path / "nginx.conf")[:-1], "daemon", "off;"]
    assert "server 127.0.0.1:8013 " in (tmp_path / "conf.d" / "flotilla.conf").read_text()
    assert f"root {tmp_path / 'static'};" in (tmp_path / "conf.d" / "site.conf").read_text()


@pytest.mark.process
def test_nginx_and_gixy_accept_every_variant() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/nginx.py", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    for variant in ("http", "https", "image"):
        assert f"nginx -t [{variant}]: ok" in result.stdout
    for variant in ("http", "https"):
        assert f"gixy [{variant}]: ok" in result.stdout


def test_nginx_gives_up_an_idle_connection_before_either_server_closes_it() -> None:
    # A request written into a connection the server is closing fails, and a POST then cannot
    # be resent: nginx must be the side that closes an idle upstream connection.
    text = (SOURCE / "flotilla" / "upstream.conf").read_text()
    found = re.search(r"^keepalive_timeout (\d+)s;", text, re.MULTILINE)
    assert found is not None
    nginx_idle = int(found.group(1))
    assert nginx_idle < GranianSettings.model_fields["KEEPALIVE"].default
    assert nginx_idle < GunicornSettings.model_fields["KEEPALIVE"].default


def test_nginx_opens_its_upstream_connections_anew_every_second() -> None:
    # A kept connection stays with the worker that accepted it; reopened often, the work
    # spreads over a service's workers again (upstream.conf).
    text = (SOURCE / "flotilla" / "upstream.conf").read_text()
    assert re.search(r"^keepalive_time 1s;", text, re.MULTILINE)


def test_the_check_without_nginx_says_so_instead_of_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(nginx, "NGINX", str(tmp_path / "no-nginx-here"))

    assert nginx.check(tmp_path / "no-gixy-here") is False

    said = capsys.readouterr().out
    assert "nginx is not installed" in said
    assert "Traceback" not in said
