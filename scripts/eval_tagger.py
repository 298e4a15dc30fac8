"""Print the SDG tagger's evaluation: now `python -m bench.tagger` (kept so old notes still work).

Usage: python scripts/eval_tagger.py [bench.tagger options]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.tagger import main

if __name__ == "__main__":
    main()
