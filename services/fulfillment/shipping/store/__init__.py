"""The shipping service's SQL (asyncpg only), one module per concern: ``shipments``
(orders, shipments, labels, milestones), ``tracking`` (scans and webhook receipts),
``carrier`` (recorded carrier calls, the simulated carrier's label ledger),
``simulation`` (the simulated carrier's parcels on the road) and ``views`` (reads for
the HTTP API).

Lock order, per handled message: the order's row first, then its shipments by id.
"""
