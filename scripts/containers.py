"""``make containers``: every service's image, built from the Dockerfile users build.

The Dockerfile starts from two images a registry serves: the official Python image and uv's.
Where no registry is reachable, both are made here from what is, and passed as build
arguments (``PYTHON_IMAGE``, ``UV_IMAGE``), so the Dockerfile itself stays the one users run:

* ``flotilla-base/python:3.11-bookworm``: ``debootstrap --variant=minbase bookworm`` with
  Debian's Python 3.11 (the official image builds the same minor version from source),
  imported with ``podman import``. It trusts the certificate authorities this machine trusts
  (``SSL_CERT_FILE``, else Debian's bundle), and points ``SSL_CERT_FILE`` at them for uv,
  so a build behind a proxy that inspects TLS still reaches the package index.
* ``flotilla-base/uv:local``: the uv that installed this workspace, alone, at ``/uv`` as in
  uv's own image.

Both are made once and kept (``--rebuild-base`` makes them again). Then each service's image
is built, timed and measured, and so are the images compose.yml takes from registries
(PostgreSQL, Redis, RabbitMQ, nginx, an SMTP catcher in mailpit's place), each from Debian's
packages on the same base, with a Containerfile of its own under ``deploy/containers/``;
``deploy/containers/compose.local.yml`` puts them in the place of the registries' images.
podman runs with ``deploy/containers/containers.conf``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flotilla import declaration

ROOT = Path(__file__).resolve().parents[1]
CONTAINERS = ROOT / "deploy" / "containers"
ENGINE_CONFIG = CONTAINERS / "containers.conf"
SERVICES = declaration.load(ROOT / declaration.FILE_NAME).names
"""Every service of the declaration has an image (the Dockerfile's stage of its name)."""
INFRASTRUCTURE = ("postgres", "redis", "rabbitmq", "nginx", "smtp")
"""The images of ``deploy/containers/<name>/Containerfile``, in compose.local.yml's names."""
PYTHON_BASE = "localhost/flotilla-base/python:3.11-bookworm"
UV_BASE = "localhost/flotilla-base/uv:local"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_PACKAGES = ("python3", "ca-certificates")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def image_of(service: str) -> str:
    """The local image of ``service``, as compose.yml names it."""
    return f"localhost/flotilla/{service}:local"


def infrastructure_image(name: str) -> str:
    """The local image of infrastructure ``name`` (``postgres``), as compose.local.yml names it."""
    return f"localhost/flotilla-infra/{name}:bookworm"


def engine_environment() -> dict[str, str]:
    """The environment every podman call runs with."""
    return {**os.environ, "CONTAINERS_CONF": str(ENGINE_CONFIG)}


def podman(*arguments: str, capture: bool = False) -> str:
    """Run ``podman arguments``; its standard output when ``capture``. Raises on failure."""
    result = subprocess.run(
        ["podman", *arguments],
        env=engine_environment(),
        check=True,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    return result.stdout or ""


def image_exists(name: str) -> bool:
    """Whether podman holds an image called ``name``."""
    found = subprocess.run(
        ["podman", "image", "exists", name], env=engine_environment(), check=False
    )
    return found.returncode == 0


def build_python_base() -> None:
    """The Debian bookworm + Python 3.11 root filesystem, imported as :data:`PYTHON_BASE`."""
    with tempfile.TemporaryDirectory(prefix="flotilla-rootfs-") as directory:
        rootfs = Path(directory) / "rootfs"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(DEBIAN_PACKAGES)}",
                "bookworm",
                str(rootfs),
                DEBIAN_MIRROR,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        shutil.copyfile(os.environ.get("SSL_CERT_FILE", CA_BUNDLE), rootfs / CA_BUNDLE[1:])
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
            subprocess.run(
                [
                    "podman",
                    "import",
                    "--change",
                    "ENV LANG=C.UTF-8",
                    "--change",
                    f"ENV SSL_CERT_FILE={CA_BUNDLE}",
                    "--change",
                    'CMD ["python3"]',
                    "-",
                    PYTHON_BASE,
                ],
                stdin=tar.stdout,
                env=engine_environment(),
                check=True,
                stdout=subprocess.DEVNULL,
            )
        if tar.returncode != 0:
            raise subprocess.CalledProcessError(tar.returncode, "tar")


def build_uv_base() -> None:
    """This workspace's uv binary alone, at ``/uv``, as :data:`UV_BASE`."""
    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    with tempfile.TemporaryDirectory(prefix="flotilla-uv-") as directory:
        shutil.copy(uv, Path(directory) / "uv")
        (Path(directory) / "Containerfile").write_text("FROM scratch\nCOPY uv /uv\n")
        podman("build", "--quiet", "--tag", UV_BASE, directory, capture=True)


def ensure_bases(*, rebuild: bool = False) -> None:
    """Make the two base images unless podman has them already."""
    if rebuild or not image_exists(PYTHON_BASE):
        build_python_base()
    if rebuild or not image_exists(UV_BASE):
        build_uv_base()


@dataclass(frozen=True)
class Built:
    """One service's image: its name, how long the build took and how big it is."""

    service: str
    image: str
    seconds: float
    megabytes: float


def build_service(service: str, *, quiet: bool = False) -> Built:
    """Build ``service``'s image from the Dockerfile on the local bases."""
    arguments = {"SERVICE": service, "PYTHON_IMAGE": PYTHON_BASE, "UV_IMAGE": UV_BASE}
    return _build(service, image_of(service), ROOT / "Dockerfile", ROOT, arguments, quiet=quiet)


def build_infrastructure(name: str, *, quiet: bool = False) -> Built:
    """Build infrastructure ``name``'s image from Debian's packages on the Python base."""
    context = CONTAINERS / name
    arguments = {"BASE_IMAGE": PYTHON_BASE}
    image = infrastructure_image(name)
    return _build(name, image, context / "Containerfile", context, arguments, quiet=quiet)


def _build(
    name: str,
    image: str,
    containerfile: Path,
    context: Path,
    arguments: dict[str, str],
    *,
    quiet: bool,
) -> Built:
    started = time.monotonic()
    podman(
        "build",
        "--format",
        "docker",  # OCI images have no HEALTHCHECK: podman would drop the Dockerfile's
        *(["--quiet"] if quiet else []),
        *(f"--build-arg={argument}={value}" for argument, value in arguments.items()),
        "--tag",
        image,
        "--file",
        str(containerfile),
        str(context),
        capture=quiet,
    )
    seconds = time.monotonic() - started
    size = int(podman("image", "inspect", "--format", "{{.Size}}", image, capture=True))
    return Built(name, image, seconds, size / 1_000_000)


def build_all(services: Sequence[str] = SERVICES, *, quiet: bool = False) -> list[Built]:
    """The bases if missing, then every service's image."""
    ensure_bases()
    return [build_service(service, quiet=quiet) for service in services]


def build_all_infrastructure(*, quiet: bool = False) -> list[Built]:
    """The bases if missing, then every infrastructure image."""
    ensure_bases()
    return [build_infrastructure(name, quiet=quiet) for name in INFRASTRUCTURE]


@contextmanager
def timed(what: str) -> Iterator[None]:
    """Print how long ``what`` took."""
    started = time.monotonic()
    yield
    print(f"{what}: {time.monotonic() - started:.1f} s", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rebuild-base", action="store_true", help="make the bases again")
    parser.add_argument("services", nargs="*", default=list(SERVICES), help="which images")
    arguments = parser.parse_args(argv)
    with timed("base images"):
        ensure_bases(rebuild=arguments.rebuild_base)
    built = [build_service(service, quiet=True) for service in arguments.services]
    built += [build_infrastructure(name, quiet=True) for name in INFRASTRUCTURE]
    print("\n| image | build s | size MB |\n|---|--:|--:|")
    for image in built:
        print(f"| {image.image} | {image.seconds:.1f} | {image.megabytes:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
