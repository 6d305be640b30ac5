"""Sequences in blocks (meshctl.blocks) and sharded mappings (generate.sharded): updated by copy,
they must behave as a tuple and a dict updated the same way, leave what they were made from as
it was, and find an item where it is even when the order they are told is wrong."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from meshctl.blocks import BLOCK, Blocks
from meshctl.generate.sharded import ShardedMap
from strategies import FUZZ


class _Item:
    """Compares by identity, like the views the sequences hold; `rank` is its place."""

    def __init__(self, rank: int) -> None:
        self.rank = rank


def _rank(item: _Item) -> int:
    return item.rank


@FUZZ
@given(count=st.integers(0, 3 * BLOCK + 5), data=st.data())
def test_replacing_items_is_replacing_them_in_a_tuple(count: int, data: st.DataObject) -> None:
    items = tuple(_Item(i) for i in range(count))
    blocks = Blocks(items)
    positions = data.draw(st.lists(st.integers(0, count - 1), max_size=6)) if count else []
    changes = {position: _Item(position) for position in positions}
    updated = blocks.replaced(changes)
    expected = tuple(changes.get(i, item) for i, item in enumerate(items))
    assert tuple(updated) == expected and len(updated) == count
    assert tuple(blocks) == items  # the sequence it came from is as it was
    assert [updated[i] for i in range(-count, 0)] == list(expected)
    assert tuple(updated[1:-1:2]) == expected[1:-1:2]
    untouched = set(range(len(blocks.blocks()))) - {p // BLOCK for p in changes}
    assert all(updated.blocks()[i] is blocks.blocks()[i] for i in untouched)
    for position, item in changes.items():
        assert updated.position(item, _rank) == position
        assert updated.position(items[position], _rank) is None


@FUZZ
@given(ranks=st.permutations(list(range(2 * BLOCK + 3))))
def test_an_item_is_found_even_when_the_order_is_not_the_one_told(ranks: list[int]) -> None:
    items = [_Item(rank) for rank in ranks]
    blocks = Blocks(items)
    for position in (0, len(items) // 2, len(items) - 1):
        assert blocks.position(items[position], _rank) == position
    assert blocks.position(_Item(0), _rank) is None


@FUZZ
@given(keys=st.lists(st.text(max_size=3), max_size=200, unique=True), data=st.data())
def test_a_sharded_mapping_updated_is_a_dict_updated(keys: list[str], data: st.DataObject) -> None:
    original = {key: index for index, key in enumerate(keys)}
    mapping = ShardedMap(original)
    changes = data.draw(st.dictionaries(st.text(max_size=3), st.integers(), max_size=8))
    updated = mapping.updated(changes)
    expected = original | changes
    assert sorted(updated.values()) == sorted(expected.values())
    assert all(updated.get(key) == value for key, value in expected.items())
    assert sorted(mapping.values()) == sorted(original.values()) and mapping.get("\x00absent") is None
