"""The console's pages: parse the form, ask one module, render one template."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from console import charts, sessions, signin
from console.backends import backends
from console.config import ConsoleSettings
from console.deadletters import dead_letter_queues
from console.forms import (
    OrderSearchForm,
    ProductSearchForm,
    ReplayForm,
    SignInForm,
    StockForm,
)
from console.status import system_status, traffic_counters
from flotilla import accepts_any_body, current_settings

log = logging.getLogger(__name__)

console = Blueprint("console", __name__, url_prefix="/console")
console.before_request(sessions.refuse_without_sessions)


def _settings() -> ConsoleSettings:
    return current_settings(ConsoleSettings)


def _web_services() -> dict[str, str]:
    settings = _settings()
    return {
        "users": settings.USERS_URL,
        "catalog": settings.CATALOG_URL,
        "orders": settings.ORDERS_URL,
    }


# Signing in and out


@console.route("/sign-in", methods=["GET", "POST"])
@accepts_any_body
def sign_in_page() -> Any:
    """The sign-in form; on success, back to the page that sent here (or the status)."""
    form = SignInForm()
    if form.validate_on_submit():
        try:
            signed_in = signin.sign_in(form.login.data or "", form.password.data or "")
        except signin.NotAnAdministrator:
            form.form_errors.append("This account is not an administrator's.")
        else:
            if signed_in:
                return redirect(_local(request.args.get("next")) or url_for("console.status"))
            form.form_errors.append("Wrong username, e-mail or password.")
    status = 401 if form.form_errors else 200
    return render_template("sign_in.html", form=form), status


@console.post("/sign-out")
@accepts_any_body
def sign_out() -> Response:
    """End the session here and at users."""
    signin.sign_out()  # CSRFProtect has checked the form's token
    flash("Signed out.")
    return redirect(url_for("console.sign_in_page"))


def _local(target: str | None) -> str | None:
    """``target`` if it is a path of this console, so sign-in never redirects elsewhere."""
    if target and target.startswith("/console/") and not target.startswith("//"):
        return target
    return None


# Status and charts


@console.get("/")
@signin.require_administrator
def status() -> str:
    """Every process's readiness and figures; the page refreshes its panel by itself."""
    return render_template("status.html", processes=_status())


@console.get("/status/panel")
@signin.require_administrator
def status_panel() -> str:
    """The status panel alone, for the page's refresh."""
    return render_template("status_panel.html", processes=_status())


def _status() -> list[Any]:
    settings = _settings()
    processes = system_status(_web_services(), settings.STATUS_PROGRAMS)
    if not settings.PROMETHEUS_URL:  # the charts' samples, from the scrapes just made
        charts.record_samples_if_possible(
            {p.name: p.counters for p in processes if p.counters is not None}
        )
    return processes


@console.get("/charts")
@signin.require_administrator
def charts_page() -> str:
    """Request rate, errors and latency per service over the last hour."""
    source = "Prometheus" if _settings().PROMETHEUS_URL else "the services' own metrics"
    return render_template("charts.html", source=source)


@console.get("/charts/data")
@signin.require_administrator
def charts_data() -> Response:
    """The charts' series as JSON: ``{"points": [...], "series": {figure: {service: [...]}}}``."""
    settings = _settings()
    if settings.PROMETHEUS_URL:
        points = charts.grid()
        series = charts.prometheus_series(settings.PROMETHEUS_URL, points)
    else:
        charts.record_samples_if_possible(traffic_counters(_web_services()))
        points = charts.grid()  # after the sample just taken: it is on the grid
        series = charts.sampled_series(points)
    response = jsonify(points=points, series=series)
    response.headers["Cache-Control"] = "no-store"
    return response


# Orders


@console.get("/orders")
@signin.require_administrator
def orders() -> Any:
    """Find an order by id, or list a customer's orders."""
    form = OrderSearchForm(request.args)
    found: Any = None
    if request.args and form.validate():
        if form.order_id.data:
            return redirect(url_for("console.order", order_id=form.order_id.data))
        if form.customer.data:
            found = backends().customer_orders(
                g.access_token, form.customer.data, request.args.get("cursor")
            )
    return render_template("orders.html", form=form, found=found)


@console.get("/orders/<int:order_id>")
@signin.require_administrator
def order(order_id: int) -> str:
    """One order: its lines and its state history."""
    return render_template("order.html", order=backends().order(g.access_token, order_id))


# Products


@console.get("/products")
@signin.require_administrator
def products() -> str:
    """Products by part of their name or SKU, active or not, each with its forms."""
    form = ProductSearchForm(request.args)
    active = request.args.get("active", "true") != "false"
    q = form.q.data if form.validate() and form.q.data else ""
    page = backends().products(
        g.access_token, q=q, active=active, cursor=request.args.get("cursor")
    )
    return render_template(
        "products.html",
        form=form,
        page=page,
        active=active,
    )


@console.post("/products/<int:product_id>/stock")
@accepts_any_body
@signin.require_administrator
def set_stock(product_id: int) -> Response:
    """Set a product's stock level."""
    form = StockForm()
    if form.validate_on_submit() and form.stock.data is not None:
        product = backends().set_stock(g.access_token, product_id, form.stock.data)
        flash(f"Stock of {product['sku']} is now {product['stock']}.")
    else:
        flash("The stock must be a whole number, 0 or more.", "error")
    return _back_to_products()


@console.post("/products/<int:product_id>/deactivate")
@accepts_any_body
@signin.require_administrator
def deactivate(product_id: int) -> Response:
    """Take a product off sale."""
    backends().deactivate(g.access_token, product_id)
    flash(f"Product {product_id} is off sale.")
    return redirect(url_for("console.products"))


def _back_to_products() -> Response:
    """Back to the products page the form was on (its search kept), else to the list."""
    referrer = request.referrer or ""
    if referrer.startswith(f"{request.host_url}console/products"):
        return redirect(referrer)
    return redirect(url_for("console.products"))


# Dead letters


@console.get("/dead-letters")
@signin.require_administrator
def dead_letters() -> str:
    """Each service's dead letters, oldest first, with a replay button each."""
    return render_template("dead_letters.html", queues=dead_letter_queues(_settings()))


@console.post("/dead-letters/<service>/replay")
@accepts_any_body
@signin.require_administrator
def replay(service: str) -> Response:
    """Send one dead letter (``task_id``) or all of ``service``'s back to its work queue."""
    form = ReplayForm()
    if not form.validate_on_submit():
        flash("That dead letter cannot be named so.", "error")
        return redirect(url_for("console.dead_letters"))
    queues = {queue.service: queue for queue in dead_letter_queues(_settings(), read=False)}
    if service not in queues:
        flash(f"No dead-letter queue is shown for {service}.", "error")
        return redirect(url_for("console.dead_letters"))
    task_ids = [form.task_id.data] if form.task_id.data else None
    moved = queues[service].replay(task_ids)
    log.info(
        "dead letters replayed",
        extra={"service": service, "count": len(moved), "user_id": g.administrator.user_id},
    )
    flash(f"{len(moved)} dead letter(s) of {service} sent back to work.")
    return redirect(url_for("console.dead_letters"))
