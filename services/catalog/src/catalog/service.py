"""Products: create, change, deactivate, read and list; views call these and nothing else.

Reads of one product (by id or by SKU) go through :data:`product_cache`, which holds each
product's public JSON document as it is sent (``ProductPublic``), so a hit is answered without
loading, building or dumping anything; every write deletes the product's two keys after its
commit, so the next read loads what was committed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError

from catalog.config import CatalogSettings
from catalog.models import Product, db
from catalog.schemas import SKU_PATTERN, ProductPublic
from flotilla import Cache, Conflict, NotFound, Page, current_settings, keyset_query, page_of

log = logging.getLogger(__name__)


product_cache = Cache("products")
"""Products' public JSON documents under ``v<N>:id:<id>`` and ``v<N>:sku:<SKU>``."""

DOCUMENT_VERSION = 1
"""Part of every cache key: raise it when ``ProductPublic`` changes, so that during a rolling
deploy neither version serves the other's documents."""

_SKU = re.compile(SKU_PATTERN)
_PUBLIC = ProductPublic()


class ProductNotFound(NotFound):
    """No product has this id or SKU (404)."""

    code, title = "product-not-found", "Product Not Found"


class SkuTaken(Conflict):
    """Another product already has this SKU (409)."""

    code, title = "sku-taken", "SKU Taken"


def normalize_sku(sku: str) -> str:
    """The form a SKU is stored and compared in: upper-case."""
    return sku.upper()


def create_product(*, sku: str, **fields: Any) -> Product:
    """Add a product; raises :class:`SkuTaken`."""
    session = db.session()
    product = Product(sku=normalize_sku(sku), **fields)
    session.add(product)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        if _sku_exists(product.sku):
            raise SkuTaken(f"A product with SKU {product.sku!r} exists.") from None
        raise
    forget_products([(product.id, product.sku)])  # a read may have found nothing meanwhile
    log.info("product created", extra={"product_id": product.id, "sku": product.sku})
    return product


def _sku_exists(sku: str) -> bool:
    with db.reading() as session:
        return session.scalar(select(Product.id).where(Product.sku == sku)) is not None


def update_product(product_id: int, changes: dict[str, Any]) -> Product:
    """Apply ``changes`` (name, description, price, currency, stock, active) to a product."""
    session = db.session()
    product = session.get(Product, product_id, with_for_update=True)
    if product is None:
        session.rollback()
        raise ProductNotFound(f"Product {product_id} does not exist.")
    for name, value in changes.items():
        setattr(product, name, value)
    session.commit()
    forget_products([(product.id, product.sku)])
    log.info("product changed", extra={"product_id": product_id, "fields": sorted(changes)})
    return product


def deactivate_product(product_id: int) -> None:
    """Take a product off sale; it stays readable, and doing it again changes nothing."""
    session = db.session()
    statement = (
        update(Product)
        .where(Product.id == product_id)
        .values(active=False)
        .returning(Product.sku)
        .execution_options(synchronize_session=False)
    )
    sku = session.scalar(statement)
    session.commit()
    if sku is None:
        raise ProductNotFound(f"Product {product_id} does not exist.")
    forget_products([(product_id, sku)])
    log.info("product deactivated", extra={"product_id": product_id})


def product_document(product_id: int) -> bytes:
    """The public JSON of the product with ``product_id``, from the cache if it holds it."""
    return _cached(
        _id_key(product_id),
        lambda: Product.id == product_id,
        f"Product {product_id} does not exist.",
    )


def product_document_by_sku(sku: str) -> bytes:
    """The public JSON of the product with ``sku`` (any case), from the cache if it holds it."""
    if not _SKU.match(sku):  # nothing could match: no query, no odd cache key
        raise ProductNotFound(f"No product has SKU {sku[:64]!r}.")
    sku = normalize_sku(sku)
    return _cached(_sku_key(sku), lambda: Product.sku == sku, f"No product has SKU {sku!r}.")


def _cached(key: str, condition: Callable[[], ColumnElement[bool]], absent: str) -> bytes:
    settings = current_settings(CatalogSettings)
    found = product_cache.get_or_load_bytes(
        key, lambda: _render(condition()), ttl=settings.PRODUCT_CACHE_TTL
    )
    if found is None:
        raise ProductNotFound(absent)
    return found


def _render(condition: ColumnElement[bool]) -> bytes | None:
    """The product matching ``condition``, loaded and rendered; None if there is none."""
    with db.reading() as session:
        product = session.scalar(select(Product).where(condition))
    return None if product is None else orjson.dumps(_PUBLIC.dump(product))


def _id_key(product_id: int) -> str:
    return f"v{DOCUMENT_VERSION}:id:{product_id}"


def _sku_key(sku: str) -> str:
    return f"v{DOCUMENT_VERSION}:sku:{sku}"


def forget_products(products: Iterable[tuple[int, str]]) -> None:
    """Drop the cached reads of ``(id, sku)`` pairs; call after the commit that changed them."""
    keys = [key for product_id, sku in products for key in (_id_key(product_id), _sku_key(sku))]
    if keys:
        product_cache.delete(*keys)


def list_products(
    *, limit: int, cursor: str | None = None, active: bool = True, q: str | None = None
) -> Page[Product]:
    """Products in id order, ``limit`` at a time; ``q`` matches part of the name or SKU."""
    listed = select(Product).where(Product.active.is_(active))
    query = keyset_query(listed, Product.id, limit=limit, cursor=cursor)
    if q:
        query = query.where(
            Product.name.icontains(q, autoescape=True)
            | Product.sku.contains(normalize_sku(q), autoescape=True)
        )
    with db.reading() as session:
        products = session.scalars(query).all()
    return page_of(products, limit=limit)
