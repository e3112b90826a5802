"""`colmena-fx`: thin commands over the library; each returns an exit status.

`parser` declares the arguments, `commands` runs them; `main` prints a user's
mistake as one `error:` line with exit status 2.
"""

from __future__ import annotations

import errno
import sys

from colmena_fx.cli import commands
from colmena_fx.cli.parser import build_parser
from colmena_fx.exceptions import ColmenaFXError

__all__ = ["build_parser", "commands", "main"]


#: errno values of OSErrors a user causes by naming a path: say which, no traceback.
_PATH_ERRNOS = {
    errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR,
    errno.EEXIST, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG,
    errno.ELOOP,
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run one command; a user's mistake is one `error:` line and exit status 2.

    An unexpected exception keeps its traceback: that is a bug to report.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ColmenaFXError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in _PATH_ERRNOS or exc.filename is None:
            raise
        print(f"error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
