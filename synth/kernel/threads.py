"""Thread counts chosen for a whole process (see ``../shared/STACK.md``: two libraries that each
take every core stall one another on a busy machine)."""

from __future__ import annotations

import os
import sys

# The variables the BLAS builds numpy and scipy may ship read when they load. Not OMP_NUM_THREADS:
# numba (UMAP) and torch read it too, and their thread counts are set on their own.
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_blas_threads(n: int) -> None:
    """At most ``n`` BLAS threads for numpy and scipy in this process (0: leave the library's
    choice). Before numpy is imported this sets the variables its BLAS reads when it loads (a value
    the user set is kept); after, it limits the loaded libraries with threadpoolctl."""
    if n <= 0:
        return
    for name in BLAS_VARIABLES:
        os.environ.setdefault(name, str(n))
    if "numpy" in sys.modules:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn

        threadpool_limits(limits=n, user_api="blas")
