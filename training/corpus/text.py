"""The text that speech is synthesised from: dictionary words, number phrases and short quotes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import require_file

WORDS_FILE = Path("/usr/share/dict/words")
FORTUNES_FILE = Path("/usr/share/games/fortunes/fortunes")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")


def word_list(path: Path = WORDS_FILE) -> list[str]:
    """Plain lower-case ASCII words from a dictionary file, in file order."""
    text = require_file(path, "wamerican").read_text(encoding="utf-8", errors="ignore")
    return [word for word in text.split() if word.isascii() and word.isalpha() and word.islower()]


def fortune_quotes(path: Path = FORTUNES_FILE, max_chars: int = 240) -> list[str]:
    """Short quotes from a fortune file (entries separated by '%' lines); none when it is absent."""
    if not path.exists():
        return []
    entries = (" ".join(entry.split()) for entry in path.read_text(encoding="utf-8", errors="ignore").split("\n%\n"))
    return [entry for entry in entries if 0 < len(entry) <= max_chars and entry.isascii()]


def number_phrase(rng: np.random.Generator) -> str:
    """A number, date, time or amount written the way a reader would meet it."""
    kind = rng.integers(4)
    if kind == 0:
        return str(int(rng.integers(0, 10 ** int(rng.integers(1, 8)))))
    if kind == 1:
        return f"{int(rng.integers(1, 29))} {MONTHS[int(rng.integers(12))]} {int(rng.integers(1800, 2100))}"
    if kind == 2:
        return f"{int(rng.integers(0, 24))}:{int(rng.integers(0, 60)):02d}"
    return f"{rng.uniform(0, 1000):.2f}"


def random_sentence(rng: np.random.Generator, words: list[str], quotes: list[str]) -> str:
    """A quote, or a string of dictionary words with a number phrase in it."""
    if quotes and rng.random() < 0.3:
        return quotes[int(rng.integers(len(quotes)))]
    chosen = [words[int(i)] for i in rng.integers(len(words), size=int(rng.integers(4, 16)))]
    chosen.insert(int(rng.integers(len(chosen) + 1)), number_phrase(rng))
    return " ".join(chosen).capitalize() + str(rng.choice([".", "?", "!", ","]))
