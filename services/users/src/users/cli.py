"""``flask --app users users ...``: administration from the command line, never over HTTP.

The first administrator cannot come from the API without a backdoor, so it is created here,
by someone who can already run commands next to the database::

    flask --app users users create-admin alice --email alice@example.com
    flask --app users users grant-admin bob
"""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from flotilla import ADMIN, CUSTOMER, Problem
from users import service

users_cli = AppGroup("users", help="Account administration.")


@users_cli.command("create-admin")
@click.argument("username")
@click.option("--email", required=True, help="The administrator's e-mail address.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input instead of prompting for it.",
)
def create_admin_command(username: str, email: str, password_stdin: bool) -> None:
    """Create an administrator account named USERNAME."""
    password = _read_password(password_stdin)
    try:
        user = service.register_user(
            username=username,
            email=email,
            password=password,
            roles=(CUSTOMER, ADMIN),
        )
    except Problem as problem:
        raise click.ClickException(str(problem)) from None
    click.echo(f"created administrator {user.username} (id {user.id})")


@users_cli.command("grant-admin")
@click.argument("username")
def grant_admin_command(username: str) -> None:
    """Give the existing account USERNAME the admin role."""
    try:
        user = service.grant_role(username, ADMIN)
    except Problem as problem:
        raise click.ClickException(str(problem)) from None
    click.echo(f"{user.username} (id {user.id}) has roles: {', '.join(user.roles)}")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not 8 <= len(password) <= 128:
        raise click.ClickException("the password must have 8 to 128 characters")
    return password
