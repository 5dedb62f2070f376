"""The kernel files of dlcore.ops and the template instantiations its launchers request, found
from the objects with `filename` and `name_expressions` in dlcore.ops (dlcore.ops.launch.KernelFile)."""
import importlib
import pkgutil
import re
from collections import defaultdict
from pathlib import Path

import dlcore.ops
from dlcore.backend import kernels_dir

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def ops_instantiations() -> dict[str, set[str]]:
    """kernels/ file name -> the template instantiations dlcore.ops launches from it."""
    found = defaultdict(set)
    for module_info in pkgutil.iter_modules(dlcore.ops.__path__):
        module = importlib.import_module(f"dlcore.ops.{module_info.name}")
        for value in vars(module).values():
            filename, expressions = getattr(value, "filename", None), getattr(value, "name_expressions", None)
            if isinstance(filename, str) and isinstance(expressions, tuple):
                found[filename].update(expressions)
    return found


def included_headers() -> set[str]:
    """The names in every #include "..." of kernels/*.cu and *.cuh."""
    sources = [*kernels_dir().glob("*.cu"), *kernels_dir().glob("*.cuh")]
    return {name for path in sources for name in _INCLUDE.findall(Path(path).read_text())}
