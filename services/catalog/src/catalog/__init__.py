"""The catalog service: products, prices, stock and the reservations orders make."""
