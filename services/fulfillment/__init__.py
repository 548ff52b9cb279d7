"""Fulfillment stages: picking, packing and shipping, one service each."""
