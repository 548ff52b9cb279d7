"""Cartonization (services/fulfillment/packing/domain/cartonization.py): the smallest box
that fits, splits by weight and by volume, the oversize path, and every picked unit in
exactly one package."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.fulfillment.packing.domain import (
    Box,
    Catalog,
    PackVerificationError,
    Parcel,
    PickedLine,
    Unit,
    cartonize,
    verify,
)
from tests.unit.fulfillment.packing.catalogs import DEFAULT, PRODUCTS, catalog, lines

FILL = 0.8


def boxes(result_parcels: tuple[Parcel, ...]) -> list[str]:
    return [p.box.code for p in result_parcels]


def test_the_catalog_is_ordered_smallest_first_whatever_the_file_order() -> None:
    assert [b.code for b in catalog().boxes] == ["S", "M", "L"]
    assert catalog().largest.code == "L"


def test_the_smallest_box_that_fits_everything() -> None:
    assert boxes(cartonize(lines(("CUBE", 1)), catalog(), FILL).parcels) == ["S"]
    six = cartonize(lines(("CUBE", 6)), catalog(), FILL)  # 0.75 L of a 1 L box
    assert boxes(six.parcels) == ["S"]
    assert six.parcels[0].contents == [PickedLine("1", "CUBE", 6)]
    seven = cartonize(lines(("CUBE", 7)), catalog(), FILL)  # 0.875 L: over 80 %
    assert boxes(seven.parcels) == ["M"]
    assert not six.unknown_skus and not six.oversize_skus


def test_the_fill_factor_is_a_setting() -> None:
    assert boxes(cartonize(lines(("CUBE", 7)), catalog(), 1.0).parcels) == ["S"]
    with pytest.raises(ValueError, match="fill_factor"):
        cartonize(lines(("CUBE", 1)), catalog(), 0)


def test_one_item_needs_only_to_fit_not_to_leave_room() -> None:
    # 0.857 L is more than 80 % of the small box, but one item has no gaps to allow for
    assert boxes(cartonize(lines(("BLOCK", 1)), catalog(), FILL).parcels) == ["S"]
    assert boxes(cartonize(lines(("BLOCK", 2)), catalog(), FILL).parcels) == ["M"]


def test_an_item_turns_to_fit_a_box() -> None:
    # 280 mm long: only the large box has a side that long, whichever way it lies
    [parcel] = cartonize(lines(("PLANK", 1)), catalog(), FILL).parcels
    assert parcel.box.code == "L"


def test_a_heavy_item_forces_a_bigger_box() -> None:
    [parcel] = cartonize(lines(("BRICK", 1)), catalog(), FILL).parcels
    assert parcel.box.code == "M"  # it would fit the small box, which carries 1 kg
    assert parcel.weight_grams == 4_000 + 200  # contents + tare


def test_heavy_items_are_split_and_each_box_shrunk() -> None:
    # 12 kg of bricks: more than the large box carries (10 kg), though their volume fits
    result = cartonize(lines(("BRICK", 3)), catalog(), FILL)
    assert boxes(result.parcels) == ["L", "M"]
    assert [p.weight_grams for p in result.parcels] == [2 * 4_000 + 500, 4_000 + 200]
    assert [p.contents for p in result.parcels] == [
        [PickedLine("1", "BRICK", 2)],
        [PickedLine("1", "BRICK", 1)],
    ]


def test_a_large_volume_is_split_into_several_boxes() -> None:
    # 200 x 0.125 L = 25 L: the large box takes 21.6 L, so 172; the rest fits a medium
    result = cartonize(lines(("FEATHER", 200)), catalog(), FILL)
    assert boxes(result.parcels) == ["L", "M"]
    assert [p.contents[0].quantity for p in result.parcels] == [172, 28]


def test_big_items_go_first_and_small_ones_fill_the_gaps() -> None:
    # first-fit decreasing: the bricks open the boxes, the cubes join the first with room
    result = cartonize(lines(("CUBE", 3), ("BRICK", 3)), catalog(), FILL)
    assert boxes(result.parcels) == ["L", "M"]
    assert result.parcels[0].contents == [PickedLine("1", "CUBE", 3), PickedLine("2", "BRICK", 2)]
    assert result.parcels[1].contents == [PickedLine("2", "BRICK", 1)]


def test_an_item_longer_than_every_box_goes_alone_in_the_largest_and_is_flagged() -> None:
    result = cartonize(lines(("POLE", 1), ("CUBE", 2)), catalog(), FILL)
    assert [(p.box.code, p.oversize) for p in result.parcels] == [("S", False), ("L", True)]
    oversize = result.parcels[1]
    assert oversize.contents == [PickedLine("1", "POLE", 1)]
    assert oversize.weight_grams == 900 + 500
    assert result.oversize_skus == ("POLE",)


def test_an_item_too_heavy_for_every_box_is_oversize_too() -> None:
    result = cartonize(lines(("ANVIL", 2)), catalog(), FILL)
    assert [(p.box.code, p.oversize) for p in result.parcels] == [("L", True), ("L", True)]
    assert result.oversize_skus == ("ANVIL",)


def test_an_unknown_sku_is_packed_with_the_default_size_and_reported() -> None:
    result = cartonize(lines(("MYSTERY", 1)), catalog(), FILL)
    [parcel] = result.parcels
    assert parcel.box.code == "M"  # the default is a 150 mm cube, 700 g
    assert parcel.weight_grams == DEFAULT.weight_grams + 200
    assert result.unknown_skus == ("MYSTERY",)


def test_the_result_does_not_depend_on_the_order_of_the_lines() -> None:
    picked = [PickedLine("a", "BRICK", 2), PickedLine("b", "CUBE", 9), PickedLine("c", "X", 1)]
    assert cartonize(picked, catalog(), FILL) == cartonize(picked[::-1], catalog(), FILL)


def test_verify_refuses_a_missing_an_extra_or_an_empty_package() -> None:
    cube = Unit("1", "CUBE", PRODUCTS["CUBE"])
    small = catalog().boxes[0]
    picked = lines(("CUBE", 2))
    verify(picked, [Parcel(small, (cube,)), Parcel(small, (cube,))])  # two in two boxes
    with pytest.raises(PackVerificationError, match="missing"):
        verify(picked, [Parcel(small, (cube,))])
    with pytest.raises(PackVerificationError, match="extra"):
        verify(picked, [Parcel(small, (cube, cube)), Parcel(small, (cube,))])
    with pytest.raises(PackVerificationError, match="empty"):
        verify(picked, [Parcel(small, (cube, cube)), Parcel(small, ())])


# --- properties, over any mix of known, unknown, oversize and heavy items ---

SKUS = [*sorted(PRODUCTS), "UNKNOWN-1"]
picked_lines = st.lists(
    st.tuples(st.sampled_from(SKUS), st.integers(min_value=1, max_value=40)),
    min_size=1,
    max_size=6,
).map(lambda items: lines(*items))


def _fits(box: Box, parcel: Parcel, fill: float) -> bool:
    units = parcel.units
    if any(not u.product.size.fits_in(box.inner.sides) for u in units):
        return False
    if sum(u.product.weight_grams for u in units) > box.max_load_grams:
        return False
    volume = sum(u.product.size.volume for u in units)
    return len(units) == 1 or volume <= box.inner.volume * fill


@settings(max_examples=150, deadline=None)
@given(picked=picked_lines, fill=st.sampled_from([0.5, 0.8, 1.0]))
def test_every_unit_is_packed_exactly_once_in_a_box_that_holds_it(
    picked: list[PickedLine], fill: float
) -> None:
    cat: Catalog = catalog()
    result = cartonize(picked, cat, fill)
    packed: Counter[tuple[str, str]] = Counter()
    for parcel in result.parcels:
        assert parcel.units
        for item in parcel.contents:
            packed[(item.line_id, item.sku)] += item.quantity
        if parcel.oversize:
            assert parcel.box == cat.largest and len(parcel.units) == 1
            assert not any(_fits(b, parcel, fill) for b in cat.boxes)
            continue
        assert _fits(parcel.box, parcel, fill)
        smaller = [b for b in cat.boxes if b.inner.volume < parcel.box.inner.volume]
        assert not any(_fits(b, parcel, fill) for b in smaller), "each box is shrunk"
    assert packed == Counter({(line.line_id, line.sku): line.quantity for line in picked})
