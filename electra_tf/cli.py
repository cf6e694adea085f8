"""The one command-line convention of every electra-tf command.

Every command (``run_pretraining.py``, ``run_finetuning.py``, ``python -m electra_tf.<tool>``
and the ``electra-*`` console scripts of setup.py) takes absl flags (``--flag=value``,
``--noflag`` for booleans, ``--help``), and ends a user error with one line
``error: <what went wrong and what to do>`` and exit status 1, never a traceback;
Ctrl-C exits 130.

A tool defines its flags in a function ``define_flags(flag_values)`` and writes
``main(argv=None) -> int`` as::

    def main(argv=None) -> int:
        return cli.run(define_flags, _main, argv, user_errors=(CheckpointError,))

``run`` parses into a fresh :class:`absl.flags.FlagValues` on every call, so ``main`` can be
called in-process (tests, notebooks) any number of times, and the console script
``electra-<tool> = electra_tf.<tool>:console_main`` is ``cli.console(main)``.

``run`` quiets TensorFlow's C++ start-up logging (:func:`quiet_tensorflow_startup`) before
it calls ``define_flags``: a tool whose module imports TensorFlow only inside its functions
starts without that noise, from a script or a console script (a ``main`` that imports its
error types from TensorFlow modules calls it first).
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Optional, Sequence

from absl import flags


class UsageError(Exception):
    """A wrong flag value or combination, found after parsing: one ``error:`` line, exit 1."""


def run(define_flags: Callable[[flags.FlagValues], None],
        main: Callable[[flags.FlagValues, list], Optional[int]],
        argv: Optional[Sequence[str]] = None,
        user_errors: tuple = (),
        description: str = "") -> int:
    """Parses ``argv`` (default ``sys.argv``; ``argv[0]`` is the program) and runs ``main``.

    Args:
      define_flags: defines the tool's flags on the FlagValues it is given.
      main: called with the parsed FlagValues and the positional arguments left over.
      user_errors: exception types that are the user's to fix (bad input, a missing file):
        printed as one ``error:`` line.
      description: the text ``--help`` prints above the flags (usually the module docstring).

    Returns:
      the exit status: main's return value (0 when None), 1 for a user error, 2 for a
      flag that does not parse, 130 on Ctrl-C.
    """
    quiet_tensorflow_startup()
    argv = list(sys.argv if argv is None else argv)
    if not argv or argv[0].startswith("-"):  # called in-process with the flags only
        argv = ["electra_tf"] + argv
    flag_values = flags.FlagValues()
    define_flags(flag_values)
    if any(arg in ("--help", "-h", "--helpfull", "-?") for arg in argv[1:]):
        print((description.strip() + "\n\n" if description else "")
              + "flags:\n" + flag_values.get_help(include_special_flags=False))
        return 0
    try:
        positional = flag_values(argv)[1:]
    except flags.Error as e:
        print(f"error: {e} (see --help)", file=sys.stderr)
        return 2
    try:
        status = main(flag_values, positional)
    except (UsageError, *user_errors) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return int(status or 0)


def console(main: Callable[[Optional[Sequence[str]]], int]) -> Callable[[], None]:
    """A console_scripts target running ``main(sys.argv)`` and exiting with its status."""
    def entry_point() -> None:
        sys.exit(main(sys.argv))
    entry_point.__doc__ = main.__doc__
    return entry_point


def quiet_absl_logging() -> None:
    """absl (and TensorFlow through it) logs warnings and errors only: a command's own
    progress lines say what happens."""
    from absl import logging
    logging.set_verbosity(logging.WARNING)


def quiet_tensorflow_startup() -> None:
    """Hides TensorFlow's C++ info lines (``TF_CPP_MIN_LOG_LEVEL=2`` unless set); effective
    only before TensorFlow is first imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
