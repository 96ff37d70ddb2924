import re

from django_chatkit.ids import new_id, new_typed_id

ID_PATTERN = re.compile(r"^(thr|msg|tc|wf|tsk|atc|shcx)_[0-9a-hjkmnp-tv-z]{30}$")


def test_ids_are_prefixed_like_the_sdk():
    for item_type, prefix in [
        ("thread", "thr"),
        ("message", "msg"),
        ("tool_call", "tc"),
        ("workflow", "wf"),
        ("task", "tsk"),
        ("attachment", "atc"),
        ("sdk_hidden_context", "shcx"),
    ]:
        value = new_typed_id(item_type)
        assert value.startswith(prefix + "_")
        assert ID_PATTERN.match(value), value


def test_ids_sort_by_creation_time_as_strings():
    earlier = new_id("thr", now_ms=1_700_000_000_000)
    later = new_id("thr", now_ms=1_700_000_000_001)
    assert earlier < later


def test_ids_made_in_one_millisecond_still_sort_in_creation_order():
    ids = [new_id("msg", now_ms=1_800_000_000_000) for _ in range(1000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 1000


def test_a_clock_stepping_back_does_not_break_the_order():
    first = new_id("msg", now_ms=1_900_000_000_000)
    second = new_id("msg", now_ms=1_800_000_000_000)
    assert first < second


def test_ids_carry_at_least_96_random_bits():
    # Fresh milliseconds: the random part must differ across 2,000 ids (a 32-bit id space
    # would already collide with noticeable probability at 65k; 100 bits never will here).
    randoms = {new_id("thr", now_ms=2_000_000_000_000 + n)[-20:] for n in range(2000)}
    assert len(randoms) == 2000
    # Every one of the 20 random characters (5 bits each, 100 bits) varies freely.
    for position in range(20):
        assert len({value[position] for value in randoms}) == 32, position
