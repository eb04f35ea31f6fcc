"""Background threads that give way: measuring, fitting and warming up run at a lower CPU priority
than the page being drawn (and than a browser on the same machine), so they fill idle time instead
of delaying the first map."""

from __future__ import annotations

import os
import threading

BACKGROUND_NICE = 10


def give_way(nice: int = BACKGROUND_NICE) -> bool:
    """Lower the calling thread's CPU priority to ``nice`` (on Linux the nice value is per thread,
    and the threads it starts inherit it). Never raises it back; False where this is not supported."""
    try:
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        return True
    except (AttributeError, OSError):
        return False
