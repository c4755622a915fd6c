"""How much does the clip probability move when the input moves by less than one hop?

    python benchmarks/shift_sensitivity.py [--checkpoint src/audioconv/weights/conv1d.safetensors ...]

A detector scores one frame per hop (320 samples, 20 ms). Shifting the audio
by a whole hop only renumbers the frames (tests/test_shift.py), but a shift of
a few samples puts the word on a different sampling grid: every frame sees a
slightly different window, and the max over frames moves. A trained detector
should move little; this prints how little.

Clips: espeak-ng "welcome" in a few voices, peak 0.5, placed in the middle of
1.5 s of low white noise (std 0.003). Each clip is shifted right by delta
samples (noise and word together, cut from one longer signal), for delta in
1 .. hop, and |p(delta) - p(0)| is averaged over clips. delta = hop is the
reference: equal to 0 up to the frame that falls off the edge.

Without --checkpoint both detectors are scored with random weights (seed 0),
which shows the mechanism but not a number worth quoting.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from audioconv import audio
from audioconv.checkpoints import load_detector
from audioconv.models import Conv1dDetector, Detector, SpectrogramDetector

CLIP_SECONDS = 1.5
NOISE_STD = 0.003
PEAK = 0.5
VOICES = [("en-us", 160), ("en-gb", 140), ("en-us+f3", 180), ("en+m3", 150), ("en-gb-scotland", 170)]
SHIFT_FRACTIONS = (1 / 320, 1 / 16, 1 / 8, 1 / 4, 3 / 8, 1 / 2, 3 / 4, 1.0)  # of the hop


def synthesize_words(folder: Path, sample_rate: int) -> list[np.ndarray]:
    """One 'welcome' per voice, loaded through audio.load and normalized to PEAK."""
    words = []
    for voice, speed in VOICES:
        path = folder / f"{voice}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), "welcome"], check=True)
        word = audio.load(path, sample_rate)
        words.append(PEAK * word / np.abs(word).max())
    return words


def shifted_clips(word: np.ndarray, length: int, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """[max_shift + 1, length]: row d is the clip with noise and word moved right by d samples."""
    base = rng.normal(0.0, NOISE_STD, length + max_shift).astype(np.float32)
    start = max_shift + (length - word.size) // 2
    base[start : start + word.size] += word
    return np.stack([base[max_shift - d : max_shift - d + length] for d in range(max_shift + 1)])


def measure(model: Detector, words: list[np.ndarray]) -> None:
    hop, length = model.hop, int(CLIP_SECONDS * model.sample_rate)
    shifts = sorted({max(1, round(f * hop)) for f in SHIFT_FRACTIONS})
    rng = np.random.default_rng(0)
    changes, base_probabilities = [], []  # changes[clip][shift]
    with torch.no_grad():
        for word in words:
            clips = torch.from_numpy(shifted_clips(word, length, hop, rng)[[0, *shifts]])
            probabilities = torch.sigmoid(model.clip_logits(clips)).numpy()
            base_probabilities.append(probabilities[0])
            changes.append(np.abs(probabilities[1:] - probabilities[0]))
    changes = np.array(changes)
    print(f"  clip probability at shift 0: mean {np.mean(base_probabilities):.3f} over {len(words)} clips")
    print(f"  {'shift (samples)':>16}{'of hop':>8}{'mean |dp|':>12}{'max |dp|':>12}")
    for i, shift in enumerate(shifts):
        print(f"  {shift:>16}{shift / hop:>8.3f}{changes[:, i].mean():>12.2e}{changes[:, i].max():>12.2e}")
    sub_hop = changes[:, [i for i, s in enumerate(shifts) if s < hop]]
    print(f"  all sub-hop shifts: mean |dp| {sub_hop.mean():.2e}, max |dp| {sub_hop.max():.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", action="append", default=[], help=".safetensors or .ckpt; repeat for several")
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is needed to synthesize the clips")
    torch.set_num_threads(1)

    if args.checkpoint:
        models = [(path, load_detector(path)[0]) for path in args.checkpoint]
    else:
        torch.manual_seed(0)
        models = [(f"{cls.__name__} (random weights)", cls().eval()) for cls in (Conv1dDetector, SpectrogramDetector)]

    with tempfile.TemporaryDirectory() as tmp:
        words_by_rate = {}
        for name, model in models:
            rate = model.sample_rate
            if rate not in words_by_rate:
                words_by_rate[rate] = synthesize_words(Path(tmp), rate)
            print(f"{name}: hop {model.hop} samples, receptive field {model.receptive_field} samples")
            measure(model, words_by_rate[rate])


if __name__ == "__main__":
    main()
