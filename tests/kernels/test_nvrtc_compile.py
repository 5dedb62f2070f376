"""Every kernels/*.cu compiles through NVRTC as the cupy backend compiles it, without a GPU.

NVRTC is driven through NVIDIA's cuda-bindings (cuda.bindings.nvrtc), for sm_80 and sm_90, with
the options the cupy backend gives cupy.RawModule (dlcore.backend.nvrtc_options) followed by
those CuPy adds on its way to NVRTC (cupy_added_options), and every name expression that the
launchers in dlcore.ops request. Each expression must get a lowered name, and NVRTC's log must
hold no warning. Where CuPy is installed, test_cupy_passes_the_mirrored_options records what
CuPy's own RawModule path hands NVRTC and checks the mirror against it.

Skipped, saying why and what to install, where cuda-bindings or libnvrtc is missing: both come
with `pip install -e ".[dev]"`.
"""
from pathlib import Path

import pytest

from dlcore import backend
from dlcore.backend import kernels_dir, nvrtc_options
from tests.kernels.kernel_files import included_headers, ops_instantiations

ARCHS = ("80", "90")
SOURCES = sorted(kernels_dir().glob("*.cu"))


def cupy_added_options(arch: str) -> tuple[str, ...]:
    """What CuPy appends to RawModule's options, besides its include folders: flush denormals
    (CuPy's default), a cubin for the device's architecture, __device__ as the default."""
    return ("-ftz=true", f"-arch=sm_{arch}", "--device-as-default-execution-space")


def _load_nvrtc():
    """cuda.bindings.nvrtc with its library loaded, or a skip that says what to install."""
    try:
        from cuda.bindings import nvrtc
    except ImportError as exc:
        pytest.skip(f"cuda-bindings is not installed ({exc}): pip install -e '.[dev]'")
    try:
        nvrtc.nvrtcVersion()
    except RuntimeError as exc:  # cuda-pathfinder finds no libnvrtc
        pytest.skip(f"libnvrtc cannot be loaded ({exc}): pip install 'nvidia-cuda-nvrtc-cu12==12.*' "
                    "(part of pip install -e '.[dev]')")
    return nvrtc


@pytest.fixture(scope="module")
def nvrtc():
    return _load_nvrtc()


def _checked(nvrtc, result, what: str):
    """The values of a cuda-bindings call after its nvrtcResult, which must be success."""
    status, *values = result
    assert status == nvrtc.nvrtcResult.NVRTC_SUCCESS, f"{what}: {status!r}"
    return values[0] if len(values) == 1 else values


def nvrtc_compile(nvrtc, program_name: str, source: str, options, expressions):
    """Compile `source` with NVRTC: (succeeded, log, {name expression: lowered name or None})."""
    program = _checked(nvrtc, nvrtc.nvrtcCreateProgram(source.encode(), program_name.encode(), 0, [], []),
                       "nvrtcCreateProgram")
    try:
        for expression in expressions:
            _checked(nvrtc, nvrtc.nvrtcAddNameExpression(program, expression.encode()), expression)
        encoded = [option.encode() for option in options]
        (status,) = nvrtc.nvrtcCompileProgram(program, len(encoded), encoded)
        size = _checked(nvrtc, nvrtc.nvrtcGetProgramLogSize(program), "nvrtcGetProgramLogSize")
        # NVRTC writes into the buffer: b" " * 1 is CPython's shared b" ", which it would turn into
        # b"\x00" for the whole process; a 1-byte log is its NUL, and b"\x00" stays what it was
        log = bytes(bytearray(size))
        _checked(nvrtc, nvrtc.nvrtcGetProgramLog(program, log), "nvrtcGetProgramLog")
        succeeded = status == nvrtc.nvrtcResult.NVRTC_SUCCESS
        lowered = {}
        for expression in expressions if succeeded else ():
            found, name = nvrtc.nvrtcGetLoweredName(program, expression.encode())
            lowered[expression] = name.decode() if found == nvrtc.nvrtcResult.NVRTC_SUCCESS else None
        return succeeded, log.rstrip(b"\0").decode(errors="replace").strip(), lowered
    finally:
        nvrtc.nvrtcDestroyProgram(program)


@pytest.mark.parametrize("arch", ARCHS, ids=lambda arch: f"sm_{arch}")
@pytest.mark.parametrize("source", SOURCES, ids=lambda path: path.name)
def test_compiles_with_nvrtc_as_the_cupy_backend_does(nvrtc, source, arch, tmp_path):
    expressions = sorted(ops_instantiations().get(source.name, ()))
    options = nvrtc_options(source.parent) + cupy_added_options(arch)
    # CuPy names the program after a file in a temporary folder, as here
    succeeded, log, lowered = nvrtc_compile(nvrtc, str(tmp_path / source.name), source.read_text(), options,
                                            expressions)
    _, major, minor = nvrtc.nvrtcVersion()
    what = f"{source.name} for sm_{arch} (NVRTC {major}.{minor}, options {' '.join(options)})"
    assert succeeded, f"NVRTC failed on {what}:\n{log}"
    assert "warning" not in log.lower(), f"NVRTC warns on {what}:\n{log}"
    unlowered = [expression for expression, name in lowered.items() if not name]
    assert not unlowered, f"{what}: no lowered name for {unlowered}"


def test_the_launchers_request_name_expressions_from_every_kernel_file():
    assert {path.name for path in SOURCES} == set(ops_instantiations())


def test_a_kernel_error_fails_with_nvrtcs_log(nvrtc, tmp_path):
    """The check can fail: a broken kernel is reported with NVRTC's message, a warning shows in the log."""
    succeeded, log, _ = nvrtc_compile(nvrtc, str(tmp_path / "broken.cu"),
                                      'extern "C" __global__ void broken(float* x) { x[0] = undefined; }',
                                      cupy_added_options("90"), ())
    assert not succeeded and 'identifier "undefined" is undefined' in log
    succeeded, log, lowered = nvrtc_compile(nvrtc, str(tmp_path / "unused.cu"),
                                            "template <class T> __global__ void k(T* x) { int unused; x[0] = 1; }",
                                            cupy_added_options("90"), ("k<float>", "k<int>"))
    assert succeeded and "warning" in log and lowered["k<float>"] == "_Z1kIfEvPT_"


def cupy_nvrtc_calls(arch: str, source: Path, expressions, monkeypatch, cache_dir: Path):
    """([(options, name expressions)], the error that ended the call) of every NVRTC compile that cupy.RawModule(code=..., options=
    nvrtc_options(...), name_expressions=...).compile() makes, recorded on CuPy's own code path.

    Only what needs a device is replaced: the device's compute capability (`arch`) and two
    per-device memoizations; the module load at the end, which needs a driver, fails as expected.
    """
    import cupy._core.raw
    import cupy.cuda.compiler as compiler

    calls = []

    class RecordingProgram(compiler._NVRTCProgram):
        def compile(self, options=(), log_stream=None):
            calls.append((tuple(options), self.name_expressions))
            return super().compile(options, log_stream)

    # an empty kernel cache (a cached cubin would skip the compile); CuPy reads CUPY_CACHE_DIR at import
    monkeypatch.setattr(compiler, "_kernel_cache_backend", type(compiler._kernel_cache_backend)(str(cache_dir)))
    monkeypatch.setattr(compiler, "_NVRTCProgram", RecordingProgram)
    monkeypatch.setattr(compiler, "_get_arch", lambda: arch)
    monkeypatch.setattr(compiler, "_get_arch_for_options_for_nvrtc",
                        compiler._get_arch_for_options_for_nvrtc.__wrapped__)
    # RawModule.compile() is _get_raw_module(code, path, options, backend, translate_cucomplex,
    # enable_cooperative_groups, jitify, name_expressions, log_stream), memoized per device
    get_raw_module = cupy._core.raw._get_raw_module.__wrapped__
    with pytest.raises((cupy.cuda.runtime.CUDARuntimeError, cupy.cuda.driver.CUDADriverError)) as failure:
        get_raw_module(source.read_text(), None, nvrtc_options(source.parent), "nvrtc", False, False, False,
                       tuple(expressions), None)
    return calls, failure.value


@pytest.mark.skipif(backend.unavailable_reason("cupy") is None,
                    reason="a GPU is usable here: the gpu-marked tests compile through CuPy itself")
@pytest.mark.skipif(backend.cupy is None, reason="CuPy is not installed: pip install -e '.[gpu]'")
@pytest.mark.parametrize("arch", ARCHS, ids=lambda arch: f"sm_{arch}")
def test_cupy_passes_the_mirrored_options(arch, monkeypatch, tmp_path):
    source = kernels_dir() / "activation.cu"
    expressions = tuple(sorted(ops_instantiations()[source.name]))
    calls, failure = cupy_nvrtc_calls(arch, source, expressions, monkeypatch, tmp_path)
    compiles = [options for options, requested in calls if requested == expressions]
    assert len(compiles) == 1, f"CuPy stopped before compiling {source.name} ({failure!r}); NVRTC calls: {calls}"
    (options,) = compiles
    ours = nvrtc_options(source.parent)
    cupy_includes = [option for option in options if option.startswith("-I") and option not in ours]
    assert [option for option in options if option not in cupy_includes] == [*ours, *cupy_added_options(arch)]
    # CuPy's include folders (its headers, CUDA_PATH's) hold none of the kernels' headers, so
    # the mirror may leave them out
    shadowed = [f"{folder[2:]}/{name}" for folder in cupy_includes for name in included_headers()
                if (Path(folder[2:]) / name).exists()]
    assert not shadowed, f"CuPy's include folders shadow kernel headers: {shadowed}"
