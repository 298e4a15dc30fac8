"""Rebuild ssehub/data/sdg_un.json from the UN texts in ../shared/data/sdg (goals, targets, indicators).

Usage: python scripts/build_sdg_data.py [SHARED_SDG_DIR]
The output ships in the package so that ssehub works where ../shared is absent.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

LANGS = ("en", "fr", "es", "de", "it")


def main(src: Path, out: Path) -> None:
    """Read the CSVs and write one compact JSON file: {lang: {goals, targets, indicators}}."""
    data: dict[str, dict[str, dict[str, object]]] = {lang: {"goals": {}, "targets": {}, "indicators": {}} for lang in LANGS}
    with (src / "sdg_goals.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["lang"] in data:
                data[row["lang"]]["goals"][row["goal"]] = {"short": row["short"], "title": row["title"]}
    with (src / "sdg_targets.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["lang"] in data:
                data[row["lang"]]["targets"][row["target"]] = row["text"]
    with (src / "sdg_indicators.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["lang"] in data:
                data[row["lang"]]["indicators"][row["indicator"]] = {"target": row["target"], "text": row["text"]}
    out.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    here = Path(__file__).resolve().parent.parent
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else here.parent / "shared" / "data" / "sdg"
    main(shared, here / "ssehub" / "data" / "sdg_un.json")
