"""Helpers shared by the day-file and symbol-file cache tests."""

import mmap

import numpy as np
import pandas as pd


def mapped(arr) -> bool:
    """Whether ``arr``'s memory is a memory-mapped file (a frame built without a copy)."""
    base = arr
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    return isinstance(base, mmap.mmap)


def frames_equal(got, want) -> None:
    pd.testing.assert_frame_equal(got, want, check_index_type=False, check_categorical=False)
