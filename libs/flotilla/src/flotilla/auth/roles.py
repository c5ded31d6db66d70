"""The roles a token may carry, named once for the issuer and every service that checks them."""

from __future__ import annotations

CUSTOMER = "customer"
"""Every account has it: a person who shops."""

ADMIN = "admin"
"""An operator: manages the catalog and sees every account and order."""

SERVICE = "service"
"""A service's own token (client credentials), never a person's."""
