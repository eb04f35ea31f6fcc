import os
import threading

import pytest

from synth.kernel.threads import BACKGROUND_NICE, give_way

pytestmark = pytest.mark.skipif(not hasattr(os, "setpriority"), reason="per-thread nice values are a Linux feature")


def _priority() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_a_background_thread_gives_way_and_its_children_inherit_it_the_caller_does_not():
    before = _priority()
    seen = {}

    def child():
        seen["child"] = _priority()

    def work():
        seen["ok"] = give_way()
        seen["self"] = _priority()
        inner = threading.Thread(target=child)
        inner.start()
        inner.join()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen["ok"] is True
    assert seen["self"] == max(before, BACKGROUND_NICE)
    assert seen["child"] == seen["self"]  # Linux copies the nice value to the threads a thread starts
    assert _priority() == before  # the page's own thread keeps its priority


def test_giving_way_never_raises_a_lower_priority_back():
    seen = {}

    def work():
        give_way(15)
        give_way(5)  # asks for a higher priority than it has: left as it is
        seen["after"] = _priority()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen["after"] == max(15, _priority())
