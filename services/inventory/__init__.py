"""Inventory: stock per warehouse, reservations (nearest warehouse, split), backorders."""
