import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REPORT = ("import json, numpy, scipy.linalg; from threadpoolctl import threadpool_info; "
          "print(json.dumps(sorted({i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'})))")


def blas_threads(code: str, env: dict | None = None) -> list[int]:
    """The BLAS thread counts a new interpreter ends with after ``code`` (no inherited limits)."""
    clean = {k: v for k, v in __import__("os").environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code + "\n" + REPORT], cwd=ROOT, env={**clean, **(env or {})},
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("numpy_first", [False, True])
def test_the_app_limits_blas_before_or_after_numpy_is_loaded(numpy_first):
    baseline = blas_threads("")
    assert baseline and max(baseline) >= 2  # this machine's own choice: one per core
    code = ("import numpy\n" if numpy_first else "") + \
        "from synth.kernel.threads import limit_blas_threads; limit_blas_threads(1)"
    assert blas_threads(code) == [1]


def test_a_users_own_blas_threads_and_zero_are_kept():
    assert blas_threads("from synth.kernel.threads import limit_blas_threads; limit_blas_threads(1)",
                        {"OPENBLAS_NUM_THREADS": "2"}) == [2]
    assert max(blas_threads("from synth.kernel.threads import limit_blas_threads; limit_blas_threads(0)")) >= 2


def test_the_app_shell_applies_the_setting_when_it_is_imported():
    assert blas_threads("import pages.shell") == [1]
    assert max(blas_threads("import pages.shell", {"SYNTH_APP_BLAS_THREADS": "0"})) >= 2
