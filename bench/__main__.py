"""`python -m bench <name> --help` lists each benchmark's options."""

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    names = available()
    if argv and argv[0] in names:
        # The benchmark parses its own options (and its own --help).
        return importlib.import_module(f"bench.{argv[0]}").main(argv[1:]) or 0
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run one benchmark; it prints one JSON object per line.",
    )
    parser.add_argument("name", choices=names, help="which benchmark")
    args, rest = parser.parse_known_args(argv)
    module = importlib.import_module(f"bench.{args.name}")
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
