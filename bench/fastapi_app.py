"""The async baseline: FastAPI with an asyncpg pool, the same one-row read and document.

``uvicorn --app-dir bench fastapi_app:app --workers 2`` with ``BASELINE_CONNINFO`` set to a
libpq URL of the shop's catalog database. Each worker makes its pool (asyncpg's defaults, 10
connections) at start-up, and answers ``GET /api/v1/products/{id}`` with the document the
shop answers (``product_json``). The response is built directly (``JSONResponse``) rather
than through a response model, as a hand-tuned async endpoint would: this is the fast end of
the comparison.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # ships no type hints
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse

from product_json import QUERY, render

STATEMENT = QUERY.format("$1")
pools: dict[str, Any] = {}  # the worker's asyncpg pool


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """Open the worker's pool before it serves; close it when the worker stops."""
    pools["db"] = await asyncpg.create_pool(os.environ["BASELINE_CONNINFO"])
    try:
        yield
    finally:
        await pools.pop("db").close()


app = FastAPI(lifespan=lifespan)


@app.get("/api/v1/products/{product_id}")
async def get_product(product_id: int) -> JSONResponse:
    """One primary-key lookup, rendered as the shop renders a product."""
    row = await pools["db"].fetchrow(STATEMENT, product_id)
    if row is None:
        raise HTTPException(status_code=404)
    return JSONResponse(render(tuple(row)))
