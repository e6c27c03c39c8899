"""The pytest plugin: refquant as the oracle in another project's tests.

Installed with refquant (entry point ``pytest11``: ``refquant = "refquant.testing.plugin"``), so a
test suite only asks for the fixture:

* ``refquant_oracle``: an :class:`Oracle` whose ``op(face, name, ...)`` runs a face op
  (``oracle.op("tflite", "fully_connected", x, ...)``), ``assert_bit_exact(actual, expected, ...)``
  compares with a diagnosing report, and ``golden(name)`` loads a golden file from the golden directory;
* ``--refquant-golden-dir DIR`` (or the ini option ``refquant_golden_dir``, relative to the rootdir):
  where ``golden(name)`` looks.

For a project that does not use it the plugin changes nothing: it adds the option and the fixture,
no autouse fixture, no hook that runs on collection or reports, and loading it imports only
``refquant``'s NumPy core (the faces, Numba and hypothesis load when the oracle is first used).
``pytest -p no:refquant`` turns it off.

Added in 0.1.0.
"""

from __future__ import annotations

import os

import pytest

__all__ = ["Oracle"]  # pytest finds the fixture and the hook by their names

_OPTION, _INI = "--refquant-golden-dir", "refquant_golden_dir"


def pytest_addoption(parser) -> None:
    """Register ``--refquant-golden-dir`` and the ini option ``refquant_golden_dir``."""
    group = parser.getgroup("refquant", "refquant golden reference")
    group.addoption(_OPTION, dest="refquant_golden_dir", metavar="DIR", default=None,
                    help="directory of refquant golden files (refquant golden --out DIR/NAME.npz) that the "
                         "refquant_oracle fixture's golden(name) reads")
    parser.addini(_INI, "directory of refquant golden files, relative to the rootdir (see --refquant-golden-dir)",
                  default="")


class Oracle:
    """refquant as a test oracle (the object the ``refquant_oracle`` fixture returns).

    Args:
        golden_dir: The directory :meth:`golden` reads from (``None``: none configured).
    """

    def __init__(self, golden_dir=None):
        if golden_dir is not None and not isinstance(golden_dir, (str, os.PathLike)):
            from .. import _validate as V
            from ..errors import QuantizationTypeError

            raise QuantizationTypeError(f"golden_dir must be None or a directory name (str or os.PathLike), "
                                        f"got {V.describe(golden_dir)}")
        self.golden_dir = None if golden_dir is None else os.fspath(golden_dir)

    def op(self, face: str, name: str, *args, **kwargs):
        """Run the face op ``refquant.backends.<face>.<name>(*args, **kwargs)`` and return its result.

        ``face`` is ``"tflite"``, ``"onnx"``, ``"onnxruntime"`` or ``"pytorch"``; ``kernel=``,
        ``engine=``, ``isa=`` select the backend's arithmetic as in the face.
        """
        from .golden_ops import face_function

        return face_function(face, name)(*args, **kwargs)

    def assert_bit_exact(self, actual, expected, *, inputs=None, max_report: int = 10) -> None:
        """:func:`refquant.testing.assert_bit_exact`."""
        from .asserts import assert_bit_exact

        assert_bit_exact(actual, expected, inputs=inputs, max_report=max_report)

    def golden(self, name: str):
        """Load the golden file ``name`` (``.npz`` added if missing) from the golden directory.

        Raises:
            QuantizationValueError: No golden directory is configured, or ``name`` is not a file name.
            FileNotFoundError: No such file (the message says how to write it).
        """
        from .. import _validate as V
        from ..errors import QuantizationValueError
        from .golden import load_golden

        if self.golden_dir is None:
            raise QuantizationValueError(f"refquant_oracle.golden({name!r}) needs a golden directory: pass "
                                         f"{_OPTION} DIR to pytest, or set {_INI} in its ini file")
        if not isinstance(name, str) or not name or os.path.isabs(name):
            raise QuantizationValueError(f"name must be a golden file name relative to the golden directory, "
                                         f"got {V.describe(name)}")
        path = os.path.join(self.golden_dir, name if name.endswith(".npz") else name + ".npz")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"golden file {path!r} does not exist; write it with 'refquant golden --op OP "
                                    f"--profile PROFILE --out {path}' (ops: refquant golden --list)")
        return load_golden(path)

    def __repr__(self) -> str:
        return f"Oracle(golden_dir={self.golden_dir!r})"


def _golden_dir(config):
    option = config.getoption("refquant_golden_dir")
    if option:
        return os.path.abspath(option)
    ini = config.getini(_INI)
    return os.path.join(str(config.rootpath), ini) if ini else None


@pytest.fixture
def refquant_oracle(request) -> Oracle:
    """An :class:`Oracle` reading golden files from ``--refquant-golden-dir`` (or ``refquant_golden_dir``)."""
    return Oracle(_golden_dir(request.config))
