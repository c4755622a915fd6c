"""How well does the recorder's endpointer find a spoken keyword? Against the corpus's own spans.

    python scripts/check_endpointer.py [--per-engine 40] [--seed 0]

Takes the corpus's keyword utterances that are the keyword alone ("welcome",
"welcome!"), places each 0.6 s into a quiet take (room noise at -70 dBFS) as
``audioconv-record`` would record it, runs the recorder's check
(``recording.check_take``) and compares the span it finds with the span the
corpus recorded at synthesis. Prints, per engine, how many takes passed and
how far the found span's edges lie from the corpus's (negative: earlier).
Reads the corpus of the default config (``make data`` builds it).
"""

from __future__ import annotations

import argparse
import collections
import re

import numpy as np

from audioconv import audio, config, corpus, recording

LEAD_SECONDS = 0.6
ROOM_NOISE = 3e-4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-engine", type=int, default=40, help="utterances drawn per engine (at most)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = corpus.read_manifest(config.corpus_manifest())
    alone = re.compile(rf"{recording.KEYWORD}[.!?]?")
    by_engine = collections.defaultdict(list)
    for row in rows:
        if row["label"] == 1 and alone.fullmatch(row["text"].strip().lower()):
            by_engine[row["engine"]].append(row)
    rng = np.random.default_rng(args.seed)
    take_samples = round(recording.KEYWORD_TAKE_SECONDS * audio.SAMPLE_RATE)
    lead = round(LEAD_SECONDS * audio.SAMPLE_RATE)
    print("engine     passed   start error: median [min, max]   end error: median [min, max]   (s)")
    for engine in sorted(by_engine):
        chosen = rng.choice(len(by_engine[engine]), min(args.per_engine, len(by_engine[engine])), replace=False)
        errors, failures = [], collections.Counter()
        for index in chosen:
            row = by_engine[engine][index]
            word = audio.load(row["path"])
            wave = np.zeros(max(take_samples, lead + word.size + audio.SAMPLE_RATE // 2), dtype=np.float32)
            wave[lead:lead + word.size] = word
            wave += ROOM_NOISE * rng.standard_normal(wave.size).astype(np.float32)
            verdict = recording.check_take(wave, audio.SAMPLE_RATE, "keyword")
            if not verdict.ok:
                failures[verdict.reason] += 1
                continue
            errors.append((verdict.span[0] - (row["kw_start"] + LEAD_SECONDS),
                           verdict.span[1] - (row["kw_end"] + LEAD_SECONDS)))
        e = np.array(errors).reshape(-1, 2)
        cells = [f"{np.median(e[:, i]):+.3f} [{e[:, i].min():+.3f}, {e[:, i].max():+.3f}]" if e.size else "n/a"
                 for i in (0, 1)]
        print(f"{engine:10s} {len(errors):3d}/{len(chosen):<3d}  {cells[0]:>30s}   {cells[1]:>30s}")
        for reason, n in failures.most_common():
            print(f"           refused {n}: {reason}")


if __name__ == "__main__":
    main()
