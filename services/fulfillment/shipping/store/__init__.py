"""The shipping service's SQL (asyncpg only), one module per concern: ``shipments``
(orders, shipments, labels, milestones), ``tracking`` (scans and webhook receipts),
``carrier`` (recorded carrier calls, the simulated carrier's label ledger),
``simulation`` (the simulated carrier's parcels on the road), ``views`` (reads for
the HTTP API) and ``writes`` (a run's writes, held until the run ends).

Lock order, per run of handled messages: the orders' rows first, then their shipments,
each set in id order.
"""
