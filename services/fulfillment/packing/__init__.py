"""Packing: boxes the picked items of each order and warehouse once every pick task for
them has completed, and reports the packages (box, size, weight, contents)."""
