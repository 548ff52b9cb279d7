"""Picking: pick tasks per warehouse (single-order, batch, zone, wave) and their confirmations."""
