"""``python -m makemore`` and the ``makemore`` command.

``predict`` needs only a checkpoint, so it starts without importing Lightning (some 2 s of its
start-up); ``fit``, ``validate`` and ``test`` go through ``makemore.cli``.
"""

import sys


def main() -> None:
    if sys.argv[1:2] == ["predict"]:
        from makemore.inference.predict import command

        command(sys.argv[2:])
    else:
        from makemore.cli import main as cli

        cli()


if __name__ == "__main__":
    main()
