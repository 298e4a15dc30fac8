"""SDG reference data: the 17 goals and 169 targets (UN texts in en, fr, es, de, it) and official colours."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

# The UN's official SDG icon colours.
COLOURS = {
    1: "#E5243B", 2: "#DDA63A", 3: "#4C9F38", 4: "#C5192D", 5: "#FF3A21", 6: "#26BDE2",
    7: "#FCC30B", 8: "#A21942", 9: "#FD6925", 10: "#DD1367", 11: "#FD9D24", 12: "#BF8B2E",
    13: "#3F7E44", 14: "#0A97D9", 15: "#56C02B", 16: "#00689D", 17: "#19486A",
}
LANGS = ("en", "fr", "es", "de", "it")


@dataclass(frozen=True)
class Goal:
    """One SDG in one language."""

    sdg: int
    short: str
    title: str
    colour: str


@cache
def _data() -> dict[str, dict[str, dict[str, object]]]:
    raw = resources.files("ssehub").joinpath("data/sdg_un.json").read_text(encoding="utf-8")
    return json.loads(raw)


def goals(lang: str = "en") -> list[Goal]:
    """The 17 goals, in order, in one language (English when the language is not available)."""
    table = _data().get(lang) or _data()["en"]
    return [
        Goal(int(n), g["short"], g["title"], COLOURS[int(n)])  # type: ignore[index]
        for n, g in sorted(table["goals"].items(), key=lambda kv: int(kv[0]))
    ]


def targets(lang: str = "en") -> dict[str, str]:
    """Target code (`1.1`, `5.a`) -> official text."""
    table = _data().get(lang) or _data()["en"]
    return dict(table["targets"])  # type: ignore[arg-type]


def indicators(lang: str = "en") -> dict[str, dict[str, str]]:
    """Indicator code -> {target, text}."""
    table = _data().get(lang) or _data()["en"]
    return dict(table["indicators"])  # type: ignore[arg-type]


def goal_of(target: str) -> int:
    """The goal number of a target code."""
    return int(target.split(".", 1)[0])
