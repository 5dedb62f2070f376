"""Every kernel file compiles with nvcc for sm_80 and sm_90, without register spills.

Covers the repository's kernels/*.cu and the emulator's test kernels (so the check always has
something to compile). nvcc compiles a template only where it is instantiated, so each file is
compiled through a wrapper that includes it and takes the address of every instantiation in use:
the name expressions of the kernel files declared in dlcore.ops (objects with `filename` and
`name_expressions`, such as dlcore.ops.launch.KernelFile) and those the emulator tests launch.
Skipped when nvcc is not on PATH.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dlcore.backend import kernels_dir
from tests.kernels.kernel_files import ops_instantiations

REPO = Path(__file__).resolve().parents[2]
EMU_TEST_KERNELS = REPO / "tests" / "emu" / "kernels"
ARCHS = ("sm_80", "sm_90")
SOURCES = sorted(kernels_dir().glob("*.cu")) + sorted(EMU_TEST_KERNELS.glob("*.cu"))
EMU_TEST_INSTANTIATIONS = {"basics.cu": ("scale<float>", "scale<double>", "transpose<float, 16>")}
_FUNCTION = re.compile(r"Function properties for (\S+)")
_SPILLS = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")


def instantiations(source: Path) -> list[str]:
    if source.parent == EMU_TEST_KERNELS:
        return list(EMU_TEST_INSTANTIATIONS.get(source.name, ()))
    return sorted(ops_instantiations().get(source.name, ()))


def _label(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else path.name


def spills(ptxas_log: str) -> list[str]:
    """'function: N bytes spill stores, M bytes spill loads' for each function that spills."""
    found, function = [], "?"
    for line in ptxas_log.splitlines():
        if match := _FUNCTION.search(line):
            function = match.group(1)
        elif (match := _SPILLS.search(line)) and (int(match.group(1)) or int(match.group(2))):
            found.append(f"{function}: {match.group(0)}")
    return found


def wrapper_source(source: Path, expressions: list[str]) -> str:
    """A .cu file that includes `source` and instantiates each name expression."""
    addresses = "".join(f"    (const void*)&{expression},\n" for expression in expressions)
    table = f"extern const void* const dlcore_instantiations[] = {{\n{addresses}}};\n" if expressions else ""
    return f'#include "{source}"\n{table}'


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("source", SOURCES, ids=_label)
def test_compiles_without_register_spills(source, arch, tmp_path):
    expressions = instantiations(source)
    wrapper = tmp_path / f"instantiate_{source.name}"
    wrapper.write_text(wrapper_source(source, expressions))
    command = [
        "nvcc", "--cubin", f"-arch={arch}", "-std=c++17", "-Xptxas", "-v",
        "-I", str(source.parent), "-o", os.devnull, str(wrapper),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    what = f"{_label(source)} ({', '.join(expressions) or 'no templates instantiated'}) for {arch}"
    assert result.returncode == 0, f"nvcc failed on {what}:\n{log}"
    assert not spills(log), f"{what} spills registers: {spills(log)}\n{log}"


def test_spill_parser():
    log = (
        "ptxas info    : Function properties for good\n"
        "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n"
        "ptxas info    : Function properties for bad\n"
        "    8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads\n"
    )
    assert spills(log) == ["bad: 4 bytes spill stores, 4 bytes spill loads"]


def test_every_ops_kernel_file_exists():
    missing = sorted(name for name in ops_instantiations() if not (kernels_dir() / name).exists())
    assert not missing, f"dlcore.ops declares kernel files that kernels/ lacks: {missing}"
