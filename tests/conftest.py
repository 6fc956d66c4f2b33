"""Shared pytest fixtures."""

import pytest
import torch


@pytest.fixture
def single_torch_thread():
    """Run a test with one torch thread: tiny networks gain nothing from intra-op threads, and on
    shared cores they lose a lot. The previous setting is restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
