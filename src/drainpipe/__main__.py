"""``python -m drainpipe``: the demo (the default) and the benchmarks."""

from __future__ import annotations

import argparse
import sys

from . import __version__


def parser() -> argparse.ArgumentParser:
    """The whole command line: ``--help`` lists every command and option."""
    from ._bench import add_options

    bench_options = argparse.ArgumentParser(
        prog="python -m drainpipe bench", add_help=False
    )
    add_options(bench_options)
    bench_help = bench_options.format_help()
    bench_help = bench_help[bench_help.index("options:") + len("options:") :]
    command_line = argparse.ArgumentParser(
        prog="python -m drainpipe",
        description="drainpipe's demo and benchmarks.",
        epilog=f"options of bench:{bench_help.rstrip()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command_line.add_argument(
        "--version", action="version", version=f"drainpipe {__version__}"
    )
    commands = command_line.add_subparsers(dest="command", title="commands")
    commands.add_parser(
        "demo",
        help="a fast producer and a slow consumer on every installed backend "
        "(the default)",
    )
    add_options(
        commands.add_parser(
            "bench", help="the benchmarks, every contender side by side in one run"
        )
    )
    return command_line


def main(argv: list[str]) -> int:
    try:
        options = parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error
        return exc.code if isinstance(exc.code, int) else 2

    if options.command == "bench":
        from ._bench import run

        return run(options, argv[1:])

    from ._demo import main as demo

    return demo()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
