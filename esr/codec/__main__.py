"""Write or check the versioned schema files generated from the layouts.


    python -m esr.codec check            # exit 1 when generated != latest committed version
    python -m esr.codec write            # write v<N+1> if it differs (refused if incompatible)
    python -m esr.codec write --replace  # overwrite v<N> instead (only before it is released)
"""

from __future__ import annotations

import argparse
import sys

from esr.codec.schemas import SUBJECTS, check_latest, version_paths, write_latest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m esr.codec", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["check", "write"])
    parser.add_argument("--replace", action="store_true", help="overwrite the latest version (write only)")
    parser.add_argument("subjects", nargs="*", default=list(SUBJECTS), metavar="subject")
    args = parser.parse_intermixed_args(argv)
    status = 0
    for name in args.subjects:
        if args.command == "check":
            message = check_latest(name)
            print(message or f"{name}: generated == {version_paths(name)[-1].name}")
            status |= message is not None
            continue
        try:
            path = write_latest(name, replace=args.replace)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            status = 1
            continue
        print(f"{name}: wrote {path}" if path else f"{name}: up to date")
    return status


if __name__ == "__main__":
    sys.exit(main())
