"""What the synthesised training and evaluation speech says, and which voices say it.

Everything here is text and bookkeeping, no audio: the keyword, the confusable words, carrier
phrases and keyword-free sayings (Debian's fortunes-ru, GPL-2), and the voice split. Voices, not
clips, are held out: recall of a spotter trained on synthetic speech tends to be all-or-nothing per
voice, so a voice must never have clips on both sides of the split.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

KEYWORD = "Маруся"
KEYWORD_STEM = "марус"

# Words that share sounds with «Маруся»: the negatives the spotter must learn to reject.
CONFUSABLES: tuple[str, ...] = (
    "Маша",
    "Марина",
    "Муся",
    "Руся",
    "Мария",
    "русский",
    "мороз",
    "марш",
    "Марущ",
    "Маруф",
    "Маня",
    "Люся",
    "Дуся",
    "Ксюша",
    "Катюша",
    "Маргарита",
    "Марс",
    "Марат",
    "маршрут",
    "парус",
    "Паруся",
    "мамуся",
    "Маруна",
    "Бруся",
    "Раиса",
    "Марта",
    "морская",
    "мурлыка",
    "Русь",
    "Маруха",
    "Муся Русова",
    "Марфуша",
    "Андрюша",
    "Маринка",
    "Мариша",
    "русло",
    "Маруди",
    "Ассоль",
)

# Short requests a voice assistant hears right after its name.
ASSISTANT_PHRASES: tuple[str, ...] = (
    "включи музыку",
    "какая погода завтра",
    "поставь будильник на семь утра",
    "расскажи анекдот",
    "сколько времени",
    "сделай погромче",
    "что нового в мире",
    "позвони маме",
    "выключи свет",
    "найди рецепт борща",
    "какие пробки на дороге",
    "напомни купить хлеб",
    "следующий трек",
    "останови таймер",
    "переведи слово кошка",
    "сколько будет два плюс два",
    "включи радио",
    "как дела",
    "расскажи сказку",
    "пауза",
)

Split = Literal["train", "validation", "test"]
Engine = Literal["espeak", "festival", "rhvoice"]


@dataclass(frozen=True)
class Voice:
    """One speaker of one engine; ``name`` is what the engine's command line takes."""

    engine: Engine
    name: str

    @property
    def key(self) -> str:
        return f"{self.engine}:{self.name}"


# RHVoice voices whose licence (LGPL-2.1+) allows training shipped weights; elena is held out to pick
# thresholds on a natural voice the model never heard.
RHVOICE_TRAIN = ("aleksandr", "anna", "irina", "evgeniy-rus")
RHVOICE_VALIDATION = ("elena",)
# CC BY-NC-ND / CC BY-SA voices: evaluation only, never training.
RHVOICE_TEST = (
    "arina",
    "artemiy",
    "mikhail",
    "pavel",
    "tatiana",
    "victoria",
    "vitaliy",
    "yuriy",
    "aleksandr-hq",
)

ESPEAK_VARIANTS_DIR = Path("/usr/lib/x86_64-linux-gnu/espeak-ng-data/voices/!v")


def stable_fraction(text: str) -> float:
    """A number in [0, 1) fixed by ``text``: splits that do not depend on random state or ordering."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 2**32


def espeak_variants() -> list[str]:
    """The installed espeak-ng ``+variant`` names, sorted."""
    return sorted(path.name for path in ESPEAK_VARIANTS_DIR.iterdir() if path.is_file())


def voices(split: Split) -> list[Voice]:
    """The voices of one split. espeak-ng variants are split 70/10/20 by a hash of their name."""
    espeak_bounds = {"train": (0.0, 0.7), "validation": (0.7, 0.8), "test": (0.8, 1.0)}[split]
    chosen = [
        Voice("espeak", variant)
        for variant in espeak_variants()
        if espeak_bounds[0] <= stable_fraction(variant) < espeak_bounds[1]
    ]
    rhvoice = {"train": RHVOICE_TRAIN, "validation": RHVOICE_VALIDATION, "test": RHVOICE_TEST}[split]
    chosen += [Voice("rhvoice", name) for name in rhvoice]
    if split == "train":
        chosen.append(Voice("festival", "msu_ru_nsh_clunits"))
    return chosen


FORTUNES_DIR = Path("/usr/share/games/fortunes/ru")
_RUSSIAN_WORD = re.compile(r"^[а-яё]+(-[а-яё]+)?$")
_CYRILLIC_TEXT = re.compile(r"^[А-Яа-яЁё0-9 ,.;:!?\-–—()«»\"']+$")


def fortunes(min_chars: int = 20, max_chars: int = 300) -> list[str]:
    """Keyword-free Russian sayings from fortunes-ru, one line each, without the author lines."""
    sayings: list[str] = []
    for path in sorted(FORTUNES_DIR.glob("*.u8")):
        for block in path.read_text(encoding="utf-8", errors="ignore").split("\n%\n"):
            lines = [line.strip() for line in block.splitlines() if not line.strip().startswith("--")]
            text = " ".join(" ".join(lines).split())
            if not (min_chars <= len(text) <= max_chars and _CYRILLIC_TEXT.match(text)):
                continue
            if KEYWORD_STEM in text.lower():
                continue
            sayings.append(text)
    return sorted(set(sayings))


def text_split(text: str) -> Split:
    """Texts are split too (80/5/15), so a test voice never says a sentence seen in training."""
    fraction = stable_fraction("text:" + text)
    return "train" if fraction < 0.8 else ("validation" if fraction < 0.85 else "test")


def carrier_phrases(sayings: list[str], max_words: int = 8) -> list[str]:
    """Short phrases (clauses of sayings, and assistant requests) to put around the keyword."""
    phrases = set(ASSISTANT_PHRASES)
    for saying in sayings:
        for clause in re.split(r"[,.;:!?—–()«»\"]", saying):
            words = clause.lower().split()
            if 2 <= len(words) <= max_words and all(_RUSSIAN_WORD.match(word) for word in words):
                phrases.add(" ".join(words))
    return sorted(phrases)
