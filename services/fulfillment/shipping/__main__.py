from services.fulfillment.shipping.app import definition
from shared.runtime.service import run

run(definition())
