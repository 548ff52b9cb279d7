"""Order placement: storefront intake (Kafka + HTTP), validation, the order state machine."""
