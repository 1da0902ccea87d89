"""A rebuild's helper process (`rebuild_fold.Helper`): its arguments as JSON on stdin."""

from __future__ import annotations

import json
import sys

from inventory.projectors.rebuild_fold import help_fold


def main() -> None:
    """Fold the partitions named on stdin; exit non-zero (traceback on stderr) on failure."""
    arguments = json.loads(sys.stdin.read())
    fed = (arguments["names"], arguments["watched"], arguments["stated"])
    bounds = dict(arguments["bounds"])
    help_fold(arguments["url"], fed, bounds, arguments["chunk"])


if __name__ == "__main__":
    main()
