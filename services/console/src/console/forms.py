"""The console's forms: every one carries a CSRF token (Flask-WTF) and labels each field."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, PasswordField, SearchField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

BIGINT_MAX = 2**63 - 1


class SignInForm(FlaskForm):
    """An administrator's credentials."""

    login = StringField(
        "Username or e-mail",
        validators=[DataRequired(), Length(max=254)],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired(), Length(max=128)],
        render_kw={"autocomplete": "current-password"},
    )


class StockForm(FlaskForm):
    """A product's new stock level."""

    stock = IntegerField("New stock", validators=[InputRequired(), NumberRange(0, 2**31 - 1)])


class ReplayForm(FlaskForm):
    """Replay one dead letter (its task id) or, empty, all of them."""

    task_id = HiddenField(validators=[Optional(), Length(max=255)])


class OrderSearchForm(FlaskForm):
    """Find an order by its id or a customer's orders by the customer's id (a GET)."""

    class Meta:
        csrf = False  # a search changes nothing

    order_id = IntegerField("Order id", validators=[Optional(), NumberRange(1, BIGINT_MAX)])
    customer = IntegerField("Customer id", validators=[Optional(), NumberRange(1, BIGINT_MAX)])


class ProductSearchForm(FlaskForm):
    """Find products by part of their name or SKU (a GET)."""

    class Meta:
        csrf = False

    q = SearchField("Name or SKU contains", validators=[Optional(), Length(max=100)])
