"""Payment: authorize, void, capture and refund through a gateway adapter (sandbox by default)."""
