"""A served app's settings in its URL (ui.url_settings): only the form's fields, never the token, bounded text."""

from urllib.parse import parse_qs

import pytest

from nonlin_explorer.ui.url_settings import DASHBOARD_KEYS, EXPLORER_KEYS, MAX_VALUE_CHARS, from_query, to_query


def test_only_known_settings_are_taken_and_the_last_value_wins():
    args = {"token": [b"secret"], "width": [b"8", b"12"], "sparsity": [b"0.002"], "evil": [b"x"]}
    assert from_query(args, DASHBOARD_KEYS) == {"width": "12", "sparsity": "0.002"}


def test_a_long_or_undecodable_value_is_refused_with_its_name():
    with pytest.raises(ValueError, match="dataset: longer than"):
        from_query({"dataset": [b"x" * (MAX_VALUE_CHARS + 1)]}, DASHBOARD_KEYS)
    with pytest.raises(ValueError, match="width: not UTF-8"):
        from_query({"width": [b"\xff\xfe"]}, DASHBOARD_KEYS)


def test_the_query_written_reads_back_and_never_holds_the_token():
    settings = {"dataset": "spirals", "model": "mlp", "width": 12, "depth": None, "seed": 3, "epochs": 40.0,
                "schedule": "late", "sparsity": 0.003, "lr": 1e-4, "token": "secret", "revision": 2}
    query = to_query(settings, DASHBOARD_KEYS)
    assert query.startswith("?") and "token" not in query and "revision" not in query and "depth" not in query
    back = from_query({k: [v.encode()] for k, v in ((k, vs[-1]) for k, vs in parse_qs(query[1:]).items())},
                      DASHBOARD_KEYS)
    assert back == {"dataset": "spirals", "model": "mlp", "width": "12", "seed": "3", "epochs": "40",
                    "schedule": "late", "sparsity": "0.003", "lr": "0.0001"}
    assert to_query({}, DASHBOARD_KEYS) == ""


def test_the_keys_are_the_forms_fields():
    from dataclasses import fields

    from nonlin_explorer.trainer import TrainConfig
    from nonlin_explorer.ui.compression_core import ExplorerParams
    from nonlin_explorer.ui.dashboard_controller import _settings_of

    assert set(EXPLORER_KEYS) == {f.name for f in fields(ExplorerParams)}
    assert set(DASHBOARD_KEYS) == set(_settings_of(TrainConfig()))


@pytest.mark.parametrize("value", ["５", "①", "٣", "1\u202e2", "4\n", "é"])
def test_only_printable_ascii_is_a_setting_so_a_fullwidth_five_is_not_five(value):
    with pytest.raises(ValueError, match="N: not printable ASCII"):
        from_query({"N": [value.encode()]}, EXPLORER_KEYS)
    assert from_query({"N": [b"5"]}, EXPLORER_KEYS) == {"N": "5"}
