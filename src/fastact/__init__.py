"""fastact: fast, exact neural-network activations and their gradients for NumPy.

Every activation ``f`` comes with ``f_backward``; see ``fastact.ACTIVATIONS``
and the README.  The public functions are generated from the registry
(``fastact._registry``), the one description of each activation.
"""

from . import _registry
from ._api import build_functions, load_backends
from . import _threads
from ._threads import PARALLEL_MIN_ELEMENTS, get_num_threads, num_threads, set_num_threads
from ._version import __version__

_BACKEND, _BACKENDS = load_backends()
_FUNCTIONS = build_functions(_BACKEND)
globals().update(_FUNCTIONS)

#: Names of the activations (each also has ``<name>_backward``).
ACTIVATIONS = tuple(a.name for a in _registry.ACTIVATIONS)


def get_backend():
    """Name of the active backend: ``"native"`` or ``"numpy"``."""
    return _BACKEND.name


def config():
    """The build and runtime configuration, as a dict."""
    native = _BACKENDS.get("native")
    simd = {"in_use": None, "compiled": (), "cpu_best": None}
    openmp = False
    if native is not None:
        simd = {"in_use": native.m.isa_in_use() if _BACKEND is native else None,
                "compiled": native.m.isa_compiled(), "cpu_best": native.m.isa_best()}
        openmp = native.m.openmp_enabled()
    from . import _numpy_backend
    import numpy
    return {
        "version": __version__,
        "backend": _BACKEND.name,
        "backends_available": tuple(sorted(_BACKENDS)),
        "simd": simd,
        "openmp": openmp,
        "num_threads": get_num_threads(),
        "parallel_min_elements": PARALLEL_MIN_ELEMENTS,
        "parallel_min_elements_smooth": _threads.PARALLEL_MIN_ELEMENTS_SMOOTH,
        "numpy": numpy.__version__,
        "numpy_backend_erfc": _numpy_backend.ERFC,
    }


def show_config():
    """Print :func:`config` as aligned lines."""
    cfg = config()
    simd = cfg.pop("simd")
    cfg["simd_in_use"] = simd["in_use"]
    cfg["simd_compiled"] = ", ".join(simd["compiled"]) or "none"
    cfg["simd_cpu_best"] = simd["cpu_best"]
    width = max(map(len, cfg))
    for key, value in cfg.items():
        if isinstance(value, tuple):
            value = ", ".join(value)
        print(f"{key:<{width}}  {value}")


__all__ = (["ACTIVATIONS", "config", "get_backend", "get_num_threads", "num_threads",
            "set_num_threads", "show_config", "PARALLEL_MIN_ELEMENTS", "__version__"]
           + list(_FUNCTIONS))
