import os

import pytest
from hypothesis import settings

settings.register_profile("keras_mlcl", max_examples=25, deadline=None, derandomize=True)
settings.load_profile("keras_mlcl")

# The real CLINC150 and MULAN files, beside the repository (not shipped with it).
SHARED_DATA = os.path.normpath(
    os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
)


@pytest.fixture
def shared_data(monkeypatch):
    """The real datasets' folder, also set as `KERAS_MLCL_DATA`; skips when it is absent."""
    if not os.path.isdir(SHARED_DATA):
        pytest.skip(f"the real datasets are not at {SHARED_DATA}")
    monkeypatch.setenv("KERAS_MLCL_DATA", SHARED_DATA)
    return SHARED_DATA


@pytest.fixture
def no_data_dir(monkeypatch):
    """A run as in a fresh clone: `KERAS_MLCL_DATA` unset."""
    monkeypatch.delenv("KERAS_MLCL_DATA", raising=False)
