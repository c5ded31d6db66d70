"""``python -m flotilla.auth generate-key``: a new Ed25519 signing key for the token issuer.

The private key (PKCS#8 PEM) goes to standard output, to be stored as a secret and given to
the issuer as ``AUTH_SIGNING_KEY``; its ``kid`` and public PEM go to standard error, for the
record and for services that verify with ``AUTH_PUBLIC_KEYS`` instead of the JWKS URL.
"""

from __future__ import annotations

import argparse
import sys

from flotilla.auth.keys import SigningKey, public_pem


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m flotilla.auth", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("generate-key", help="print a new private signing key as PEM")
    parser.parse_args(argv)
    key = SigningKey.generate()
    sys.stdout.write(key.private_pem())
    sys.stderr.write(f"kid: {key.kid}\n{public_pem(key.public_key)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
