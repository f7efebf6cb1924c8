"""Run many ``python -m makemore ...`` commands without paying Python's start-up for each.

One process imports makemore's command line (Lightning and torch: some 3 s) once, then forks a
child per command. The child runs exactly what ``python -m makemore ARGS`` runs, in its own
working folder, with its own stdout, stderr and exit status (a traceback is printed and exits 1,
as Python does), so what a user would see is what the test sees. Two children run at a time.

    python tests/forked.py < jobs.json    # [{"args": [...], "cwd": ..., "out": ..., "err": ...}]

prints the exit status of each job, in order, as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

PARALLEL = 2


def run_one(job: dict) -> int:
    """In the child: the command, as ``python -m makemore`` would run it."""
    from makemore.__main__ import main

    os.chdir(job["cwd"])
    for fd, path in ((1, job["out"]), (2, job["err"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    sys.argv = [sys.argv[0], *job["args"]]
    try:
        main()
        return 0
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def main() -> None:
    import makemore.cli  # noqa: F401  the import every child shares

    jobs = json.load(sys.stdin)
    statuses: dict[int, int] = {}
    running: dict[int, int] = {}
    for index, job in enumerate(jobs):
        while len(running) >= PARALLEL:
            pid, status = os.wait()
            statuses[running.pop(pid)] = os.waitstatus_to_exitcode(status)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = run_one(job)
            finally:
                os._exit(code)
        running[pid] = index
    while running:
        pid, status = os.wait()
        statuses[running.pop(pid)] = os.waitstatus_to_exitcode(status)
    print(json.dumps([statuses[i] for i in range(len(jobs))]))


if __name__ == "__main__":
    main()
