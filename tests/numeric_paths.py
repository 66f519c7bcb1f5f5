"""The second numeric code path the labs are tested under, and a command to run under it.

On one CPU, these variables make torch and its math libraries take other kernels than they would natively:
torch's own kernels without vector instructions (``ATEN_CPU_CAPABILITY=default``), oneDNN limited to
SSE4.1 and MKL to SSE4.2. Sums then run in another order, as they do on another CPU, and a float32 training
ends with other weights (``tests/test_numeric_paths.py`` shows it). The variables must be set before torch
is imported, so they are set for the whole process that starts the lab kernels.

``python -m tests.numeric_paths CMD ...`` runs CMD under this path; ``python -m tests.numeric_paths`` prints
the variables.
"""

from __future__ import annotations

import os
import sys

SECOND_PATH = {
    "ATEN_CPU_CAPABILITY": "default",
    "DNNL_MAX_CPU_ISA": "SSE41",
    "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
}


def main(argv: list[str]) -> int:
    if not argv:
        print(" ".join(f"{k}={v}" for k, v in SECOND_PATH.items()))
        return 0
    os.execvpe(argv[0], argv, {**os.environ, **SECOND_PATH})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
