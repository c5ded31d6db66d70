"""The console's vendored front-end files, fetched from the npm registry at pinned versions.

    python scripts/vendor.py          # fetch each package, check it, write its files
    python scripts/vendor.py --check  # fetch and compare with the files in the repository

Each package's tarball is checked against the registry's Subresource Integrity hash pinned
here before any file is taken from it, so a changed or substituted tarball is refused. The
files are committed (the console must work offline and without a build step); this script
is how they got there and how to update them: change the version and the hash together.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "services" / "console" / "src" / "console" / "static" / "vendor"
REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class Package:
    """One npm package: its version, its tarball's integrity, the files taken from it."""

    name: str
    version: str
    integrity: str
    files: tuple[str, ...]

    @property
    def tarball(self) -> str:
        return f"{REGISTRY}/{self.name}/-/{self.name}-{self.version}.tgz"


PACKAGES = (
    Package(
        "uplot",
        "1.6.32",
        "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==",
        ("dist/uPlot.iife.min.js", "dist/uPlot.min.css", "LICENSE"),
    ),
)


def fetch(package: Package) -> dict[str, bytes]:
    """The package's files, by name without its directory; refused if the hash differs."""
    with urllib.request.urlopen(package.tarball, timeout=30) as response:  # noqa: S310 - https
        data = response.read()
    algorithm, _, expected = package.integrity.partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if digest != expected:
        raise SystemExit(f"{package.name} {package.version}: integrity mismatch, refused")
    files = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for name in package.files:
            member = archive.extractfile(f"package/{name}")
            if member is None:
                raise SystemExit(f"{package.name}: {name} is not a file")
            files[Path(name).name] = member.read()
    return files


def main(argv: list[str] | None = None) -> int:
    """Write (or, with ``--check``, compare) every package's files."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    options = parser.parse_args(argv)
    differing = []
    for package in PACKAGES:
        directory = VENDOR / package.name
        for name, content in fetch(package).items():
            target = directory / name
            if options.check:
                if not target.exists() or target.read_bytes() != content:
                    differing.append(str(target.relative_to(ROOT)))
            else:
                directory.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
        print(f"{package.name} {package.version}: {'checked' if options.check else 'written'}")
    if differing:
        print("differ from the registry's:", *differing, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
