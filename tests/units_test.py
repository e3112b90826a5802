"""Sizes and durations, read as people write them and printed as they read them."""

from __future__ import annotations

from typing import Any

import pytest

from colmena_fx.exceptions import UsageError
from colmena_fx.units import format_ms
from colmena_fx.units import format_size
from colmena_fx.units import parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (1000, 1000),
        ("0", 0),
        ("512B", 512),
        ("1KB", 1000),
        ("1.5kb", 1500),
        ("1 MB", 10**6),
        ("1MiB", 2**20),
        ("8MiB", 8 * 2**20),
        ("2.5 kB", 2500),
        ("3 GiB", 3 * 2**30),
    ],
)
def test_sizes_read_in_decimal_and_binary_units(text: Any, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["1 parsec", "10XB", "", "-1 MB", True, -5])
def test_unreadable_sizes_are_usage_errors_that_show_an_example(text: Any) -> None:
    with pytest.raises(UsageError, match="size"):
        parse_size(text)


def test_sizes_print_in_decimal_units_without_a_needless_decimal() -> None:
    assert [format_size(n) for n in (0, 512, 1000, 12_600_000, 11.5 * 2**20)] == [
        "0 B", "512 B", "1 kB", "12.6 MB", "12.1 MB",
    ]  # fmt: skip


def test_milliseconds_keep_about_three_digits() -> None:
    seconds = [None, 0.0000123, 0.00246, 0.0126, 0.1234, -0.00246]
    assert [format_ms(s) for s in seconds] == [
        "-", "0.012", "2.46", "12.6", "123", "-2.46",
    ]  # fmt: skip
