"""Fixtures of the emulator tests: the compiled test kernel files and clean emulator settings."""
from pathlib import Path

import pytest

from dlcore import emu

KERNELS = Path(__file__).parent / "kernels"


@pytest.fixture(autouse=True)
def _fresh_emulator_settings():
    """Each test starts from the environment's emulator settings and cannot leak its own."""
    with emu.configured():
        yield


@pytest.fixture(scope="session")
def basics():
    return emu.build_module(
        KERNELS / "basics.cu", name_expressions=("scale<float>", "scale<double>", "transpose<float, 16>")
    )


@pytest.fixture(scope="session")
def intrinsics():
    return emu.build_module(KERNELS / "intrinsics.cu")


@pytest.fixture(scope="session")
def races():
    return emu.build_module(KERNELS / "races.cu")


@pytest.fixture(scope="session")
def shared_forms():
    return emu.build_module(KERNELS / "shared_forms.cu")
