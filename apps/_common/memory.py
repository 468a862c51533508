"""What the memory probe reads inside the app (GET /memory, after a full gc.collect()):

  {"sdk_objects": int,         live objects whose class comes from sentry_sdk (scopes, hubs,
                               spans, transactions, clients...): what an SDK leak retains
   "sdk_classes": {name: n},   the five most numerous of them
   "rss_kib": int|null, "gc_objects": int}

After a flush, nothing of a finished request should keep an SDK object alive:
a per-request leak (a hub or scope kept by mistake, spans never released)
shows as a steady slope of sdk_objects over requests within a few dozen
requests, with no tracing cost (tracemalloc slowed the apps fourfold) and
without the noise of allocator pools and caches that hid small growth in RSS.
Valid Python 2.7 and 3.x, stdlib only.
"""
from __future__ import absolute_import, print_function

import gc


def rss_kib():
    """VmRSS of this process in KiB (Linux), or None."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (IOError, OSError):
        pass
    return None


def sample():
    gc.collect()
    objects = gc.get_objects()
    counts = {}
    for obj in objects:
        cls = type(obj)
        module = getattr(cls, "__module__", None)  # a str, except for types that make it a property
        if isinstance(module, str) and module.startswith("sentry_sdk"):
            counts[cls.__name__] = counts.get(cls.__name__, 0) + 1
    top = sorted(counts.items(), key=lambda item: -item[1])[:5]
    return {"sdk_objects": sum(counts.values()), "sdk_classes": dict(top), "rss_kib": rss_kib(),
            "gc_objects": len(objects)}
