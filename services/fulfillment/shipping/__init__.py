"""Shipping: buy the cheapest label that keeps the promise, dispatch, follow the carrier."""
