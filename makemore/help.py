"""The top-level help of ``python -m makemore``: printed for ``--help`` and when no command is
given, without importing Lightning or torch (``makemore.__main__`` and ``makemore.cli`` share it)."""

import sys

HELP = """\
usage: python -m makemore [--verbose] {fit,validate,test,predict} [options]
       python -m makemore COMMAND --help      every option of a command, with its default

Character-level language models: give fit a text file with one item per line (names, words)
and it learns to generate more items like them, and to score how plausible an item is.

commands:
  fit        train a model from a config; writes checkpoints/<config>-<n>/ (best and last
             checkpoints, config.yaml, TensorBoard events) and ends naming the best checkpoint
  validate   evaluate a checkpoint on the validation split (default: the newest run's best)
  test       evaluate a checkpoint on the test split (default: the newest run's best)
  predict    sample new items from a checkpoint, or score given ones (--score)

options:
  -h, --help  show this help and exit
  --verbose   also show Lightning's own messages (devices, restoring, its warnings) and the
              model summary

examples:
  python -m makemore fit --config configs/v5.yaml
  python -m makemore fit --config configs/v5.yaml --data.path my_words.txt
  python -m makemore validate --config configs/v5.yaml
  python -m makemore predict --num_samples 10
  python -m makemore predict --score emma olivia zzyzx
"""


def help_or_none(argv: list[str]) -> bool:
    """Print the top-level help for ``--help`` (exit 0) or no command (exit 2); False otherwise."""
    if argv in (["-h"], ["--help"], ["--verbose", "-h"], ["--verbose", "--help"]):
        sys.stdout.write(HELP)
        return True
    if argv in ([], ["--verbose"]):
        sys.stdout.write(HELP)
        raise SystemExit(2)  # asked for nothing: not a success for a script
    return False
