from services.fulfillment.picking.app import definition
from shared.runtime.service import run

run(definition())
