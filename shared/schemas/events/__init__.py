"""One module per bounded context; importing this package registers every model."""

from shared.schemas.events import (  # noqa: F401
    fulfillment,
    inventory,
    notification,
    order,
    payment,
    returns,
    risk,
)
