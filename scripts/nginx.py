"""The nginx front door: render ``deploy/nginx/`` into a runnable configuration, check it.

``deploy/nginx/`` is the one source of the configuration. Its ``templates/*.conf.template``
go inside ``http {}``, with ``${NAME}`` placeholders for what differs between places;
``tls/*.conf.template`` replace the templates of the same name when TLS is on; the static
files in ``flotilla/`` are included by both. The official nginx image fills the
placeholders from the environment (its envsubst step) and includes the result from its own
``nginx.conf``. :func:`render` fills them here and adds ``deploy/nginx/nginx.conf``, whose
paths all stay inside the rendered directory, so ``make run`` and the tests run nginx as
any user without touching ``/etc`` or ``/var``; it only reads the console's static files
(:func:`static_root`) and, when installed, Debian's brotli module (:func:`brotli_installed`).
Reasons and numbers: ``docs/adr/0016-nginx-front-door.md``.

Command line::

    python scripts/nginx.py render --dir var/nginx --port 8080 [--tls-port 8443] \\
        [--static-root DIR] --users 127.0.0.1:8001 --catalog 127.0.0.1:8002 \\
        --orders 127.0.0.1:8003 --console 127.0.0.1:8004
    python scripts/nginx.py check    # nginx -t and gixy on every variant; non-zero on a finding

Run the rendered configuration with :func:`command`; SIGHUP to the master reloads it,
SIGQUIT drains and stops.
"""

from __future__ import annotations

import argparse
import grp
import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from certificates import ensure_certificate
from system import SYSTEM, WEB_SERVICES

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "deploy" / "nginx"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
"""Debian installs nginx in /usr/sbin, which an ordinary user's PATH often lacks."""
ADDRESS = "127.0.0.1"
"""Rendered configurations listen on loopback only: they are for this machine."""
STATIC_PACKAGE = "console"
"""The package whose ``static/`` directory the front door serves under ``/static/``."""
IMAGE_STATIC_ROOT = "/srv/flotilla/static"
"""Where the nginx container finds those files (compose.yml mounts them there)."""
BROTLI_MODULE = Path("/usr/lib/nginx/modules/ngx_http_brotli_filter_module.so")
"""Debian's brotli filter (libnginx-mod-http-brotli-filter), in nginx's ``--modules-path``."""

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SAFE_VALUE = re.compile(r"[^\s;{}#'\"$\\]+")
"""A value must stay one nginx word: no spaces, quotes, braces, ``;``, ``#`` or ``$``."""

Value = str | Sequence[str]


class TemplateError(ValueError):
    """A template names a placeholder without a value, or a value would break the syntax."""


class Upstreams:
    """Where each web service answers: ``"127.0.0.1:8001"`` or ``"unix:/path/users.sock"``.

    One keyword per web service of the declaration (``users=[...]``), none missing or extra.
    Several addresses are replicas of the service; nginx spreads requests over them.
    """

    def __init__(self, **addresses: Sequence[str]) -> None:
        expected = set(WEB_SERVICES)
        if set(addresses) != expected:
            raise ValueError(f"give the addresses of exactly {', '.join(WEB_SERVICES)}")
        for name, given in addresses.items():
            if isinstance(given, str) or not given:
                raise ValueError(f"{name}: give a sequence of one or more addresses")
        self.addresses: dict[str, list[str]] = {
            name: list(addresses[name]) for name in WEB_SERVICES
        }

    @classmethod
    def partial(cls, **addresses: Sequence[str]) -> Upstreams:
        """The given services' addresses; every other service's an address that refuses.

        For a front door in front of part of the system (a test, a benchmark): requests for
        the others get nginx's 502 problem at once.
        """
        return cls(**{name: addresses.get(name, [NOWHERE]) for name in WEB_SERVICES})

    def __repr__(self) -> str:
        return f"Upstreams({self.addresses!r})"


NOWHERE = "127.0.0.1:1"
"""An address nothing listens on (port 1 needs privileges): connections to it are refused."""


@dataclass(frozen=True)
class Tuning:
    """What a run may change: the rate limits per client address and the read timeout.

    The defaults are production's. A load test sends everything from one address, so it
    turns the limits off; a test of nginx's own 504 shortens the timeout rather than wait.
    """

    rate_limits: bool = True
    api_rate: str = "20r/s"
    tokens_rate: str = "2r/s"
    read_timeout: str = "15s"


def substitute(template: str, values: Mapping[str, Value]) -> str:
    """Fill every ``${NAME}`` of ``template`` from ``values``, as the image's envsubst does.

    A line whose placeholder has several values is written once per value (one ``server``
    line per replica). Unknown placeholders and unsafe values raise :class:`TemplateError`,
    so a typo fails here instead of reaching nginx as a literal ``${...}``.
    """
    lines: list[str] = []
    for number, line in enumerate(template.splitlines(keepends=True), start=1):
        try:
            lines.extend(_substitute_line(line, values))
        except TemplateError as error:
            raise TemplateError(f"line {number}: {error}") from None
    return "".join(lines)


def _substitute_line(line: str, values: Mapping[str, Value]) -> list[str]:
    names = list(dict.fromkeys(PLACEHOLDER.findall(line)))
    unknown = [name for name in names if name not in values]
    if unknown:
        raise TemplateError(f"no value for {', '.join(unknown)}")
    several = [name for name in names if not isinstance(values[name], str)]
    if not several:
        return [_fill(line, values)]
    if len(several) > 1:
        raise TemplateError(f"only one placeholder of a line may have several values: {several}")
    name = several[0]
    if not values[name]:
        raise TemplateError(f"{name} has no value")
    return [_fill(line, {**values, name: value}) for value in values[name]]


def _fill(line: str, values: Mapping[str, Value]) -> str:
    def value_of(match: re.Match[str]) -> str:
        value = values[match[1]]
        if not isinstance(value, str) or not SAFE_VALUE.fullmatch(value):
            raise TemplateError(f"{match[1]}={value!r} is not a single nginx word")
        return value

    return PLACEHOLDER.sub(value_of, line)


def static_root() -> Path:
    """The console's ``static/`` directory, beside its installed package's ``__init__.py``.

    Found without importing the package (nothing of it runs here), wherever it is installed:
    in this repository's workspace that is ``services/console/src/console/static``.
    """
    spec = importlib.util.find_spec(STATIC_PACKAGE)
    if spec is None or spec.origin is None:
        raise TemplateError(
            f"FLOTILLA_STATIC_ROOT: the {STATIC_PACKAGE} package is not installed; give the "
            "directory of the static files instead"
        )
    return Path(spec.origin).resolve().parent / "static"


def brotli_installed() -> bool:
    """True when nginx can load Debian's brotli filter module on this machine."""
    return BROTLI_MODULE.is_file()


def placeholder_values(
    upstreams: Upstreams,
    *,
    port: int,
    tls_port: int | None,
    tuning: Tuning,
    static: Path,
) -> dict[str, Value]:
    """The value of every placeholder the templates use, for a configuration on this machine."""
    values: dict[str, Value] = {
        "FLOTILLA_ADDRESS": ADDRESS,
        "FLOTILLA_PORT": str(port),
        "FLOTILLA_ACCESS_LOG": "access.log",
        "FLOTILLA_STATIC_ROOT": str(static),
        **{
            f"FLOTILLA_{name.upper()}_UPSTREAM": addresses
            for name, addresses in upstreams.addresses.items()
        },
        "FLOTILLA_RATE_LIMITS": "on" if tuning.rate_limits else "off",
        "FLOTILLA_API_RATE": tuning.api_rate,
        "FLOTILLA_TOKENS_RATE": tuning.tokens_rate,
        "FLOTILLA_PROXY_READ_TIMEOUT": tuning.read_timeout,
    }
    if tls_port is not None:
        values |= {
            "FLOTILLA_TLS_PORT": str(tls_port),
            "FLOTILLA_TLS_CERTIFICATE": "tls/certificate.pem",
            "FLOTILLA_TLS_KEY": "tls/key.pem",
        }
    return values


def templates(*, tls: bool) -> dict[str, Path]:
    """The templates to render, by file name: ``tls/`` replaces ``templates/`` when TLS is on."""
    chosen = {path.name: path for path in sorted((SOURCE / "templates").glob("*.conf.template"))}
    if tls:
        chosen |= {path.name: path for path in sorted((SOURCE / "tls").glob("*.conf.template"))}
    return chosen


def render(
    directory: Path,
    upstreams: Upstreams,
    *,
    port: int,
    tls_port: int | None = None,
    tuning: Tuning = Tuning(),
    static: Path | None = None,
    brotli: bool | None = None,
) -> Path:
    """Write a complete nginx configuration under ``directory``; return its ``nginx.conf``.

    The pid file, temporary files and the access log stay inside ``directory``; the error log
    is nginx's stderr. With ``tls_port``, the API is served over HTTPS (and HTTP/2) there
    with a certificate from :func:`ensure_certificate`, and ``port`` redirects to it (308).
    ``/static/`` serves the files of ``static`` (default: :func:`static_root`). ``brotli``
    loads the brotli module and compresses static files with it; by default, when
    :func:`brotli_installed`. Rendering again over a running nginx and sending it SIGHUP
    applies the change: every file is replaced whole (written aside, then renamed), so a
    reload never reads half a file.
    """
    directory = directory.resolve()
    (directory / "temp").mkdir(parents=True, exist_ok=True)
    if tls_port is not None:
        ensure_certificate(directory)
    static = (static or static_root()).resolve()
    values = placeholder_values(
        upstreams, port=port, tls_port=tls_port, tuning=tuning, static=static
    )
    files = {
        f"conf.d/{name.removesuffix('.template')}": substitute(path.read_text(), values)
        for name, path in templates(tls=tls_port is not None).items()
    }
    files |= {f"flotilla/{path.name}": path.read_text() for path in (SOURCE / "flotilla").iterdir()}
    files |= _main_files(brotli=brotli_installed() if brotli is None else brotli)
    for name, text in files.items():
        _replace(directory / name, text)
    for earlier in (directory / "conf.d").glob("*.conf"):  # from a template since removed
        if f"conf.d/{earlier.name}" not in files:
            earlier.unlink()
    return directory / "nginx.conf"


def _main_files(*, brotli: bool) -> dict[str, str]:
    """``nginx.conf``; with ``brotli``, the module loaded there and its settings included.

    The settings (``flotilla/brotli.conf``) are included from ``conf.d/`` only when the
    module is loaded: without it, nginx would refuse ``brotli on`` as an unknown directive.
    """
    files: dict[str, str] = {}
    main = _user_directive()
    if brotli:
        main += f"load_module {BROTLI_MODULE};\n"
        files["conf.d/brotli.conf"] = "include flotilla/brotli.conf;\n"
    files["nginx.conf"] = main + (SOURCE / "nginx.conf").read_text()
    return files


def _replace(path: Path, text: str) -> None:
    path.parent.mkdir(exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.replace(path)


def _user_directive() -> str:
    """Under root, workers run as root too: they must enter the directory, which may be private.

    Without this line nginx's workers would become ``nobody``, who cannot write the
    temporary files of a directory inside a 0700 one (pytest's, a home directory). For any
    other user nginx would ignore the line with a warning, so it is left out.
    """
    if os.geteuid() != 0:
        return ""
    user = pwd.getpwuid(os.geteuid())
    return f"user {user.pw_name} {grp.getgrgid(user.pw_gid).gr_name};\n"


def command(config: Path) -> list[str]:
    """The nginx command line that runs ``config`` in the foreground, rooted in its directory."""
    return [
        NGINX,
        "-e",
        "stderr",
        "-p",
        f"{config.parent}/",
        "-c",
        str(config),
        "-g",
        "daemon off;",
    ]


IMAGE_MAIN_CONFIG = """\
# The main nginx.conf of the official nginx image, as far as it concerns the templates
# (temporary paths added so that checking it touches nothing outside this directory).
worker_processes auto;
pid nginx.pid;
error_log stderr notice;
events {
    worker_connections 1024;
}
http {
    default_type application/octet-stream;
    log_format main '$remote_addr - $remote_user [$time_local] "$request" $status';
    access_log access.log main;
    sendfile on;
    keepalive_timeout 65;
    client_body_temp_path temp/client_body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;
    include conf.d/*.conf;
}
"""
"""Duplicated directives between this and the templates would stop the image's nginx."""

CHECK_UPSTREAMS = Upstreams(
    **{service: [f"127.0.0.1:{SYSTEM[service].port}"] for service in WEB_SERVICES}
)


def render_image_layout(directory: Path) -> Path:
    """The templates as the official image would run them: its nginx.conf, its envsubst."""
    config = render(directory, CHECK_UPSTREAMS, port=8080, brotli=False)
    values = placeholder_values(
        CHECK_UPSTREAMS, port=8080, tls_port=None, tuning=Tuning(), static=Path(IMAGE_STATIC_ROOT)
    )
    values |= {"FLOTILLA_ADDRESS": "*", "FLOTILLA_ACCESS_LOG": "/dev/stdout"}
    for name, path in templates(tls=False).items():
        (directory / "conf.d" / name.removesuffix(".template")).write_text(
            substitute(path.read_text(), values)
        )
    config.write_text(IMAGE_MAIN_CONFIG)
    return config


def check(gixy: Path) -> bool:
    """``nginx -t`` and gixy on each way the configuration runs; print what they say.

    gixy reads the image layout's configuration too, but only the templates' part of it is
    ours; the image's own nginx.conf is left to the image (it has no worker_rlimit_nofile).
    """
    if not Path(NGINX).exists():
        print(f"nginx -t: FAILED: nginx is not installed ({NGINX}); install it (Debian: nginx)")
        return False
    passed = True
    with tempfile.TemporaryDirectory(prefix="flotilla-nginx-check-") as scratch:
        http = render(Path(scratch, "http"), CHECK_UPSTREAMS, port=8080)
        https = render(Path(scratch, "https"), CHECK_UPSTREAMS, port=8080, tls_port=8443)
        image = render_image_layout(Path(scratch, "image"))
        runs = [
            (variant, "nginx -t", _syntax_check(config))
            for variant, config in (("http", http), ("https", https), ("image", image))
        ]
        runs += [
            (variant, "gixy", [str(gixy), str(config)])
            for variant, config in (("http", http), ("https", https))
        ]
        for variant, tool, argv in runs:
            result = subprocess.run(argv, capture_output=True, text=True, check=False)
            print(f"{tool} [{variant}]: {'ok' if result.returncode == 0 else 'FAILED'}")
            if result.returncode != 0:
                print(result.stdout + result.stderr)
                passed = False
    return passed


def _syntax_check(config: Path) -> list[str]:
    return [*command(config)[:-2], "-q", "-t"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    render_command = commands.add_parser("render", help="write a runnable configuration")
    render_command.add_argument("--dir", type=Path, required=True, help="where to write it")
    render_command.add_argument("--port", type=int, required=True, help="the HTTP port")
    render_command.add_argument("--tls-port", type=int, help="serve HTTPS here too")
    render_command.add_argument(
        "--static-root", type=Path, help="the files of /static/ (default: the console's)"
    )
    for service in WEB_SERVICES:
        render_command.add_argument(
            f"--{service}",
            nargs="+",
            required=True,
            metavar="ADDRESS",
            help="host:port or unix:path",
        )
    check_command = commands.add_parser("check", help="nginx -t and gixy; non-zero on a finding")
    check_command.add_argument(
        "--gixy",
        type=Path,
        default=Path(sys.executable).with_name("gixy"),
        help="the gixy executable (default: the one beside this Python)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Render or check, as the command line says."""
    arguments = _parser().parse_args(argv)
    if arguments.command == "check":
        return 0 if check(arguments.gixy) else 1
    upstreams = Upstreams(**{service: getattr(arguments, service) for service in WEB_SERVICES})
    config = render(
        arguments.dir,
        upstreams,
        port=arguments.port,
        tls_port=arguments.tls_port,
        static=arguments.static_root,
    )
    print(" ".join(command(config)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
