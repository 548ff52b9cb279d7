from services.fulfillment.packing.app import definition
from shared.runtime.service import run

run(definition())
