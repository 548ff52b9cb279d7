"""The shipping network from the seed files: where each warehouse ships from
(``seed/warehouses.json``) and the simulated carriers' services, rates and transit
times (``seed/carriers.json``). Read once at start-up; the files are validated strictly,
so a typo stops the service instead of mispricing labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.fulfillment.shipping.carrier import Place
from services.fulfillment.shipping.domain.rating import DEFAULT_DIM_DIVISOR, ServiceRate, Zone

SEED = Path(__file__).parent / "seed"
WAREHOUSES = SEED / "warehouses.json"
CARRIERS = SEED / "carriers.json"

Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
Region = Annotated[str, Field(pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Warehouse(_Strict):
    warehouse_id: str = Field(min_length=1)
    name: str
    line1: str
    city: str
    postal_code: str
    region: Region
    country: Country

    def place(self) -> Place:
        return Place(
            name=self.name,
            line1=self.line1,
            city=self.city,
            postal_code=self.postal_code,
            country=self.country,
            region=self.region,
        )


class WarehouseFile(_Strict):
    description: str = ""
    warehouses: list[Warehouse]


class ServiceSpec(_Strict):
    service: Name
    base_minor: dict[Zone, Annotated[int, Field(ge=0)]]
    per_kg_minor: dict[Zone, Annotated[int, Field(ge=0)]]
    transit_days: dict[Zone, Annotated[int, Field(ge=0)]]

    @model_validator(mode="after")
    def _same_zones(self) -> ServiceSpec:
        if not (set(self.base_minor) == set(self.per_kg_minor) == set(self.transit_days)):
            raise ValueError(f"{self.service}: base, per-kg and transit must name the same zones")
        return self


class CarrierSpec(_Strict):
    carrier: Name
    name: str
    tracking_prefix: str = Field(pattern=r"^[A-Z]{2,4}$")
    dim_divisor: int = Field(default=DEFAULT_DIM_DIVISOR, gt=0)
    services: list[ServiceSpec] = Field(min_length=1)

    def rates(self) -> list[ServiceRate]:
        return [
            ServiceRate(
                carrier=self.carrier,
                service=s.service,
                base_minor=s.base_minor,
                per_kg_minor=s.per_kg_minor,
                transit_days=s.transit_days,
                dim_divisor=self.dim_divisor,
            )
            for s in self.services
        ]


class CarrierNetwork(_Strict):
    """The simulated carriers, as ``seed/carriers.json`` describes them."""

    description: str = ""
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    near_areas: dict[str, list[Country]]
    carriers: list[CarrierSpec] = Field(min_length=1)

    def areas(self) -> list[frozenset[str]]:
        return [frozenset(countries) for countries in self.near_areas.values()]

    def carrier(self, name: str) -> CarrierSpec:
        for spec in self.carriers:
            if spec.carrier == name:
                return spec
        raise KeyError(f"no simulated carrier {name!r}")


def load_warehouses(path: Path = WAREHOUSES) -> dict[str, Warehouse]:
    parsed = WarehouseFile.model_validate_json(path.read_bytes())
    return {w.warehouse_id: w for w in parsed.warehouses}


def load_carriers(path: Path = CARRIERS) -> CarrierNetwork:
    return CarrierNetwork.model_validate_json(path.read_bytes())
