"""Copies between group order and given order by runs equal gathers by index."""

import torch

from rosetta_steps.core.units import LayerSpec
from rosetta_steps.mining.order import Run, in_order, order_runs, to_given, to_group
from rosetta_steps.mining.sums import Side


def side(sizes_channels: list[tuple[int, int]]) -> Side:
    specs = [LayerSpec(f"l{i}", c, s) for i, (s, c) in enumerate(sizes_channels)]
    return Side("x", specs, [1], torch.device("cpu"))


def test_runs_are_the_maximal_steps_by_one():
    assert order_runs([0, 1, 2]) == [Run(0, 0, 3)]
    assert order_runs([3, 4, 0, 1, 2, 5]) == [Run(0, 3, 2), Run(2, 0, 3), Run(5, 5, 1)]
    assert order_runs([]) == []


def test_copies_by_runs_equal_gathers_by_index():
    # a ResNet-like side (sizes falling: one run per layer) against one with sizes mixed
    gan, disc = side([(8, 3), (4, 2), (8, 2), (2, 4)]), side([(7, 2), (14, 3), (7, 1)])
    assert len(gan.runs) == 4 and len(disc.runs) == 3
    assert not in_order(gan.runs, disc.runs) and in_order(order_runs([0, 1, 2]), [])
    m = torch.randn(gan.n_units, disc.n_units, dtype=torch.float64)
    given = m[gan.inverse][:, disc.inverse]
    torch.testing.assert_close(to_given(m, gan.runs, disc.runs), given, rtol=0, atol=0)
    for lo, hi in [(0, 4), (2, 9), (9, 11)]:
        torch.testing.assert_close(to_given(m, gan.runs, disc.runs, lo, hi), given[lo:hi],
                                   rtol=0, atol=0)
    back = torch.full_like(m, float("nan"))
    to_group(given, gan.runs, disc.runs, back)
    torch.testing.assert_close(back, m, rtol=0, atol=0)


def test_one_run_each_is_a_view():
    gan, disc = side([(2, 3), (4, 2)]), side([(7, 4)])
    m = torch.randn(gan.n_units, disc.n_units)
    rows = to_given(m, gan.runs, disc.runs, 1, 4)
    assert rows.data_ptr() == m[1].data_ptr()
    torch.testing.assert_close(rows, m[1:4], rtol=0, atol=0)
