"""A phonetic training signal: the detector's features also spell out what was said.

Trained on a handful of voices, a keyword detector can learn *who* says
"welcome" as much as *what* is said: its features separate the training voices'
keyword from their other speech, and a new voice's "welding" may land nearer
the keyword than its "welcome". ASR-style keyword spotters generalize across
speakers because their features are made to encode phonemes. This module adds
that pressure as an auxiliary loss, used in training only:

- every utterance's text becomes a phoneme sequence, the same canonical
  pronunciation whichever engine spoke it (espeak-ng's en-us IPA, one word at a
  time, stress dropped: ``phoneme_targets``);
- a 1x1 convolution (``PhoneticHead``) reads the hidden features the keyword
  head reads (``Detector.embed``: one vector per 20 ms frame), or with
  ``phonetic.depth`` those after the first few temporal blocks, whose
  windows (~0.15-0.3 s instead of ~0.95 s) span a few sounds rather than a
  dozen, and emits phoneme log-probabilities per frame;
- CTC (connectionist temporal classification) scores them against the
  utterance's phoneme sequence, with no alignment needed: the corpus knows
  what each utterance says, not when each sound is said.

The auxiliary batches are whole utterances (``audioconv.utterances``), not the
keyword clips: a clip is cut from running speech, so which sounds it holds is
unknown, while a whole utterance says exactly its text. The head is not part
of the detector: its weights stay out of the shipped ``model.*`` keys, and
scanning costs nothing more. ``phonetic.weight`` (0: off) scales its loss.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from audioconv.corpus.similar import Phonemizer, espeak_phonemes, phoneme_symbols

DEFAULT_PHONETIC = {"weight": 0.0, "batch_size": 8, "window_seconds": 4.0, "margin_seconds": 0.5, "depth": None}
BLANK = 0  # CTC's "no new symbol" class; phoneme i of the inventory is class i + 1
WORD = re.compile(r"[a-z']+")


def phonetic_settings(phonetic: Mapping[str, Any] | None) -> dict[str, Any]:
    """The phonetic config with defaults filled in, as plain numbers (checkpoint-safe)."""
    settings = {**DEFAULT_PHONETIC, **dict(phonetic or {})}
    unknown = set(settings) - set(DEFAULT_PHONETIC)
    if unknown:
        raise ValueError(f"unknown phonetic settings: {sorted(unknown)}")
    weight, batch_size = float(settings["weight"]), int(settings["batch_size"])
    window, margin = float(settings["window_seconds"]), float(settings["margin_seconds"])
    if weight < 0:
        raise ValueError(f"phonetic.weight must be >= 0, not {weight}")
    if batch_size < 1:
        raise ValueError(f"phonetic.batch_size must be >= 1, not {batch_size}")
    if margin < 0 or window <= 2 * margin:
        raise ValueError(f"phonetic.window_seconds ({window}) must exceed twice phonetic.margin_seconds ({margin}), which is >= 0")
    depth = settings["depth"]
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise ValueError(f"phonetic.depth must be null (every temporal block) or a whole number >= 0, not {depth!r}")
    return {"weight": weight, "batch_size": batch_size, "window_seconds": window, "margin_seconds": margin, "depth": depth}


def text_words(text: str) -> list[str]:
    """The words of an utterance's text, lower case, punctuation dropped ("Welcome, Jo!" -> welcome, jo).

    Letters a-z and apostrophes only (a lone apostrophe is no word): the
    synthesized corpus's texts are plain ASCII words; a digit or an accented
    letter would split or shorten a word.
    """
    return [word for word in WORD.findall(text.lower().replace("’", "'")) if word.strip("'")]


def sounds(ipa: str) -> tuple[str, ...]:
    """An IPA string as the symbols CTC spells: ``similar.phoneme_symbols`` (stress dropped, a length mark
    kept with its vowel), with a combining mark also kept with its symbol (the syllabic "n̩" is one sound)."""
    symbols: list[str] = []
    for symbol in phoneme_symbols(ipa):
        if symbols and all(unicodedata.combining(char) for char in symbol):
            symbols[-1] += symbol
        else:
            symbols.append(symbol)
    return tuple(symbols)


def lexicon(texts: Iterable[str], phonemize: Phonemizer = espeak_phonemes) -> dict[str, tuple[str, ...]]:
    """Each distinct word of ``texts`` as phoneme symbols: one espeak-ng process for all of them."""
    words = sorted({w for text in texts for w in text_words(text)})
    return {word: sounds(ipa) for word, ipa in zip(words, phonemize(words))}


def inventory(pronunciations: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """Every phoneme symbol the lexicon uses, sorted: the CTC classes after the blank."""
    return tuple(sorted({s for symbols in pronunciations.values() for s in symbols}))


def phoneme_targets(text: str, pronunciations: Mapping[str, Sequence[str]], symbols: Sequence[str]) -> list[int]:
    """The CTC target of an utterance: its words' phonemes in order, as class indices (1-based; 0 is the blank).

    Raises ``KeyError`` naming a word or symbol the lexicon or inventory does not hold.
    """
    index = {symbol: i + 1 for i, symbol in enumerate(symbols)}
    targets: list[int] = []
    for word in text_words(text):
        for symbol in pronunciations[word]:
            targets.append(index[symbol])
    return targets


class PhoneticHead(nn.Module):
    """Phoneme log-probabilities per frame from the detector's hidden features, scored by CTC.

    ``features [B, C, T']`` -> ``log_probs [T', B, 1 + phonemes]`` (CTC's layout).
    """

    def __init__(self, in_channels: int, phonemes: int) -> None:
        super().__init__()
        self.classify = nn.Conv1d(in_channels, phonemes + 1, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.classify(features), dim=1).permute(2, 0, 1)

    def loss(self, features: torch.Tensor, frames: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
        """Mean CTC loss per target phoneme over the batch.

        ``frames [B]``: how many output frames each item has (all of them, for
        windows of one length); ``targets [B, S]`` phoneme classes, 0-padded
        after each item's ``target_lengths [B]``. An item whose sequence cannot
        fit its frames contributes 0 (``zero_infinity``) instead of an infinite loss.

        Computed on the CPU whatever the features' device: CUDA's CTC backward
        has no deterministic version, and training runs with
        ``deterministic=True``. The tensors are small (frames x batch x classes).
        """
        log_probs = self(features)
        loss = F.ctc_loss(log_probs.cpu(), targets.cpu(), frames.cpu(), target_lengths.cpu(), blank=BLANK,
                          reduction="mean", zero_infinity=True)
        return loss.to(features.device)
