"""Shipping rules. Pure: no I/O, no asyncio.

- ``calendar``: business days (carriers count those);
- ``rating``: distance zones, billable weight, a service's price and transit time;
- ``shopping``: the promise of a service level, and choosing the quote that keeps it;
- ``shipment``: identities, statuses, and what a carrier scan changes;
- ``simulation``: the simulated carrier's deterministic scan plan.
"""
