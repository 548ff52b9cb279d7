"""Customer portal: projections of the event streams, JSON API (and later the web UI)."""
