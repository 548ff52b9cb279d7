from services.order.app import definition
from shared.runtime.service import run

run(definition())
