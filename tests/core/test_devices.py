"""Copies of results back to the host (`core.devices.to_host`): the values, shape and dtype
of the tensor, from CPU and, where a GPU is present, through page-locked memory."""

import numpy as np
import pytest
import torch

from rosetta_steps.core.devices import to_host


def test_to_host_from_cpu_keeps_values_and_dtype():
    t = torch.arange(24, dtype=torch.float64).view(4, 6)[:, [5, 0, 2]]  # a gathered copy
    out = to_host(t)
    assert out.dtype == np.float64 and out.shape == (4, 3)
    np.testing.assert_array_equal(out, t.numpy())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_to_host_from_cuda_equals_a_plain_copy():
    t = torch.randn(1000, 300, dtype=torch.float64, device="cuda")[:, torch.arange(299, -1, -1)]
    first, second = to_host(t), to_host(t * 2)  # the second may reuse the first's buffer
    np.testing.assert_array_equal(first, t.cpu().numpy())
    np.testing.assert_array_equal(second, (t * 2).cpu().numpy())
