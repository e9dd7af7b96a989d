"""``python -m bench``: the whole side-by-side benchmark (see :mod:`bench.harness`).

Imports stay inside ``main`` so that the client processes the harness starts, which import
the ``bench`` package too, do not pay for them.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from bench.harness import main

    sys.exit(main())
