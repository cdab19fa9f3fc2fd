"""The values a JSON body may not hold (api/json_body.py)."""

import json

from api.json_body import HAS_NUL, HAS_SURROGATE, NOT_FINITE, unstorable_values


def test_each_unstorable_value_is_found_where_it_is_in_document_order():
    document = json.loads(
        '{"a": [1, NaN, {"b": "x\\u0000"}], "c\\ud800": -Infinity, "d": "\\udfff", '
        '"e": [1.5, "ok", "é😀", null, true, 10000000000000000000000]}'
    )
    found = [(location, rule) for location, rule, _ in unstorable_values(document)]
    assert found == [
        (("a", 1), NOT_FINITE),
        (("a", 2, "b"), HAS_NUL),
        (("c\ud800",), HAS_SURROGATE),
        (("c\ud800",), NOT_FINITE),
        (("d",), HAS_SURROGATE),
    ]


def test_a_string_is_judged_by_its_first_unstorable_character():
    assert [rule for _, rule, _ in unstorable_values(["\ud800\x00", "a\x00\udfff"])] == [
        HAS_SURROGATE,
        HAS_NUL,
    ]


def test_a_document_deeper_than_the_recursion_limit_is_walked():
    document: object = float("inf")
    for _ in range(5000):
        document = [document]
    ((location, rule, _),) = unstorable_values(document)
    assert location == (0,) * 5000 and rule == NOT_FINITE
