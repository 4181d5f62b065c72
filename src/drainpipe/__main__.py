"""``python -m drainpipe`` runs the demo; ``python -m drainpipe bench`` the benchmarks."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if argv[:1] == ["bench"]:
        from ._bench import main as bench

        return bench(argv[1:])

    if argv:
        print("usage: python -m drainpipe [bench [--quick] [--json FILE]]")
        return 2

    from ._demo import main as demo

    return demo()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
