"""``python -m makemore`` and the ``makemore`` command.

``predict`` needs only a checkpoint, so it starts without importing Lightning (some 2 s of its
start-up); so does this help, printed for ``--help`` and when no command is given. ``fit``,
``validate`` and ``test`` go through ``makemore.cli``.
"""

import sys

from makemore.help import help_or_none


def main() -> None:
    argv = sys.argv[1:]
    if help_or_none(argv):
        return
    command = argv[1:] if argv[:1] == ["--verbose"] else argv
    if command[:1] == ["predict"]:  # Lightning's messages never show in predict: --verbose changes nothing
        from makemore.inference.predict import command as predict

        predict(command[1:])
    else:
        from makemore.cli import main as cli

        cli()


if __name__ == "__main__":
    main()
