"""Training clips from the corpus: Dataset, sampler and LightningDataModule.

Every clip is ``clip_seconds`` long. A positive clip holds the whole keyword at
a random offset (this is what teaches shift invariance: the model cannot know
where the word will be, so it must detect it everywhere); a negative clip is a
random piece of speech that is not the keyword, or of noise, or (a share
``partial_keyword_prob`` of the positives) a keyword utterance with the head or
the tail of its keyword silenced, or spoken over by other speech of the same
voice (``partial_keyword_fill_prob``: "wel-" + "-ding"): part of the word is
not the word.

Reproducibility: a clip is a pure function of (seed, epoch, index). The
sampler hands each worker keys ``epoch * N + index`` (with engine weights,
``(epoch * N + r) * N + index`` for an item's ``r``-th draw of the epoch) and the
dataset seeds its generator from them, so the data do not depend on worker
count or scheduling.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader, Dataset, Sampler

from audioconv import audio, augment, backgrounds, corpus, phonetic, utterances
from audioconv.adversary import NO_DOMAIN
from audioconv.augment import AugmentConfig
from audioconv.streams import DEFAULT_KEYWORD, forbidden_junction
from audioconv.targets import NO_SPAN

log = logging.getLogger(__name__)


class WaveStore:
    """Many waveforms in one contiguous float32 buffer.

    One buffer instead of thousands of small arrays: forked DataLoader workers
    share it copy-on-write, since reading it never touches per-object refcounts.
    """

    def __init__(self, waves: Sequence[np.ndarray]) -> None:
        lengths = np.array([len(w) for w in waves], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])
        self.buffer = np.concatenate(waves).astype(np.float32) if waves else np.zeros(0, np.float32)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.buffer[self.offsets[i] : self.offsets[i + 1]]


def load_waves(rows: Sequence[Mapping[str, Any]], base: Path, extra: Sequence[np.ndarray] = ()) -> WaveStore:
    """Read every row's audio (16 kHz mono float32) into one store, followed by ``extra`` waves."""
    return WaveStore([*(audio.load(base / row["path"]) for row in rows), *extra])


def augment_config(values: Mapping[str, Any] | None, sample_rate: int) -> AugmentConfig | None:
    """Build an AugmentConfig from a config mapping (lists become tuples); None disables augmentation."""
    if not values:
        return None
    known = {f.name for f in fields(AugmentConfig)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown augmentation settings: {sorted(unknown)}")
    cleaned = {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in values.items()}
    return AugmentConfig(**cleaned, sample_rate=sample_rate) if "sample_rate" not in cleaned else AugmentConfig(**cleaned)


class ClipDataset(Dataset):
    """Fixed-length clips cut (and augmented) from corpus utterances.

    ``dataset[key]`` returns ``(wave [clip_samples] float32, label float32,
    span [2] float32, engine int64)``, span being the keyword's ``[start, end)``
    in samples of the clip (clamped to it; ``[-1, -1]`` in a clip without the
    keyword) and engine the index of the utterance's engine in ``domains``
    (``adversary.NO_DOMAIN`` for noise and for engines not listed);
    ``key = epoch * len(dataset) + index`` selects the utterance ``index`` and
    the random draws of that epoch.
    """

    def __init__(
        self,
        rows: Sequence[Mapping[str, Any]],
        waves: WaveStore,
        noises: WaveStore,
        clip_samples: int,
        seed: int,
        augmentation: AugmentConfig | None,
        rooms: Sequence[np.ndarray] = (),
        keyword: str = DEFAULT_KEYWORD,
        domains: Sequence[str] = (),
    ) -> None:
        self.rows, self.waves, self.noises = list(rows), waves, noises
        # which engine spoke each utterance, for the domain-adversarial loss (audioconv.adversary)
        domain_index = {engine: i for i, engine in enumerate(domains)}
        self.engine_index = np.array(
            [domain_index.get(str(r.get("engine")), NO_DOMAIN) for r in self.rows],  # noise is no engine of training_engines
            dtype=np.int64,
        )
        self.keyword = keyword  # data.corpus.keyword: context never spells it across a join
        self.rooms = rooms  # simulated room responses (augment.rir_bank) for the rir_prob share of clips
        self.labels = np.array([int(r["label"]) for r in self.rows], dtype=np.int64)
        # utterances that may surround another one: speech that is not the keyword
        self.context_pool = np.array(
            [i for i, r in enumerate(self.rows) if r["label"] == 0 and r["kind"] != "noise"], dtype=np.int64
        )
        self.fill_pools = fill_pools(self.rows)  # per voice: speech that may replace part of a cut keyword
        self.clip_samples, self.seed, self.augmentation = clip_samples, seed, augmentation
        self.sample_rate = augmentation.sample_rate if augmentation else audio.SAMPLE_RATE

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        epoch, index = divmod(int(key), len(self.rows))
        rng = np.random.default_rng([self.seed, epoch, index])
        clip, span = self.make_clip(index, rng)
        label = float(span[0] >= 0) if self.labels[index] == 1 else 0.0  # a cut keyword is a negative
        span = torch.as_tensor(span, dtype=torch.float32)
        return torch.from_numpy(clip), torch.tensor(label), span, torch.tensor(self.engine_index[index])

    def add_context(self, index: int, wave: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """The utterance with other (non-keyword) speech before and after it, as in running speech.

        A detector scanned over real audio meets the joins between words and
        utterances; a model trained only on isolated utterances fires on them.
        Returns the longer wave and where the original utterance starts in it.
        Joins that would say the keyword (``streams.forbidden_junction``: "well" + "come..."
        for "welcome") are skipped.
        """
        aug = self.augmentation
        if not aug or not len(self.context_pool) or rng.random() >= aug.context_prob:
            return wave, 0
        row, sr = self.rows[index], self.sample_rate
        before, after = (int(self.context_pool[i]) for i in rng.integers(len(self.context_pool), size=2))
        gaps = [np.zeros(int(rng.uniform(*aug.context_gap_range) * sr), np.float32) for _ in range(2)]
        pieces, offset = [wave], 0
        if not forbidden_junction(self.rows[before], row, self.keyword):
            pieces = [self.waves[before], gaps[0], *pieces]
            offset = len(self.waves[before]) + len(gaps[0])
        if not forbidden_junction(row, self.rows[after], self.keyword):
            pieces += [gaps[1], self.waves[after]]
        return np.concatenate(pieces), offset

    def make_clip(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The clip and the keyword's span in it (samples; ``NO_SPAN`` for a negative, a cut keyword included)."""
        row, aug = self.rows[index], self.augmentation
        sr, length = self.sample_rate, self.clip_samples
        wave, offset = self.add_context(index, self.waves[index], rng)
        speed = 1.0
        if aug and rng.random() < aug.speed_prob:
            speed = float(rng.uniform(*aug.speed_range))
            wave = augment.change_speed(wave, speed)
        reference_rms, span = None, np.array(NO_SPAN, dtype=np.float32)
        if row["label"] == 1:
            start, end = int((row["kw_start"] * sr + offset) / speed), int((row["kw_end"] * sr + offset) / speed)
            reference_rms = augment.rms(wave[start:end])
            if aug and aug.partial_keyword_prob > 0 and rng.random() < aug.partial_keyword_prob:
                filler = None
                pool = self.fill_pools.get(str(row.get("voice", "")))
                # no draw while the fill is off: the default recipe's clips stay what they were before it existed
                if pool is not None and aug.partial_keyword_fill_prob > 0 and rng.random() < aug.partial_keyword_fill_prob:
                    filler = self.waves[int(pool[rng.integers(len(pool))])]
                wave, start, end = cut_keyword(wave, start, end, aug.partial_keyword_cut, rng, filler)
                clip, _ = place_keyword_span(wave, start, end, length, rng)  # the fragment, placed like a keyword
            else:
                clip, span = place_keyword_span(wave, start, end, length, rng)
        else:
            clip = augment.random_crop(wave, length, rng)
        return augment.record(clip, aug, rng, self.noises, self.rooms, reference_rms), span


CUT_FADE_SECONDS = 0.005  # the cut edge fades out over this, so the cut itself is no click to learn


FILL_EXCLUDED = ("com", "cum", "kum", "wel")  # filler text that could complete the cut keyword ("be-come")


def fill_pools(rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Row indices of each voice's plain-speech negatives: what may stand in for the cut part of its keywords.

    Same voice, so the join is no change of speaker to learn; never text that
    could say the missing half ("become", "welt").
    """
    pools: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        text = str(row.get("text", "")).lower()
        if row["label"] == 0 and row["kind"] == "speech" and not any(part in text for part in FILL_EXCLUDED):
            pools.setdefault(str(row.get("voice", "")), []).append(i)
    return {voice: np.array(indices, dtype=np.int64) for voice, indices in pools.items()}


def speech_piece(source: np.ndarray, length: int, rng: np.random.Generator, tries: int = 4) -> np.ndarray:
    """The loudest of a few random ``length``-sample windows of ``source`` (speech, not its silent lead-in)."""
    if len(source) <= length:
        return np.pad(source, (0, length - len(source)))
    starts = rng.integers(0, len(source) - length + 1, size=tries)
    best = max(starts, key=lambda s: float(np.mean(np.square(source[s:s + length]))))
    return source[best:best + length]


def cut_keyword(
    wave: np.ndarray, start: int, end: int, cut: Sequence[float], rng: np.random.Generator,
    filler: np.ndarray | None = None,
) -> tuple[np.ndarray, int, int]:
    """Silence the head or the tail of the keyword: ``(wave, fragment start, fragment end)``.

    "wel-" without "-come" (or "-come" without "wel-") is what most false alarms
    on unseen voices sound like ("welding", "well done", "outcome"); a positive
    with part of its keyword silenced, the rest of the utterance kept, teaches
    that only the whole word counts, in every training voice. The cut falls at
    a fraction of the span drawn from ``cut``. With ``filler`` (other speech of
    the same voice) the cut part is not silence but a piece of it at the
    fragment's level: "wel-" + "-ding", a word the model must not take for the
    keyword by its first half, and no silent edge to lean on.
    """
    point = start + int(round(float(rng.uniform(*cut)) * (end - start)))
    fade = max(1, int(CUT_FADE_SECONDS * audio.SAMPLE_RATE))
    wave = wave.copy()
    keep_head = rng.random() < 0.5
    lo, hi = (point, end) if keep_head else (start, point)
    kept = (start, point) if keep_head else (point, end)
    wave[lo:hi] = 0.0
    edge = wave[max(start, point - fade):point] if keep_head else wave[point:min(end, point + fade)]
    ramp = np.linspace(1.0, 0.0, edge.size, dtype=np.float32)
    edge *= ramp if keep_head else ramp[::-1]
    if filler is not None and hi > lo:
        piece = speech_piece(filler, hi - lo, rng).astype(np.float32)
        level = augment.rms(wave[kept[0]:kept[1]]) / max(augment.rms(piece), 1e-8)
        piece = piece * min(level, 4.0)  # a near-silent piece is not blown up into noise
        ends = np.ones(piece.size, dtype=np.float32)
        n = min(fade, piece.size // 2)
        if n:
            ends[:n], ends[-n:] = np.linspace(0.0, 1.0, n), np.linspace(1.0, 0.0, n)
        wave[lo:hi] = piece * ends
    return wave, kept[0], kept[1]


def place_keyword(wave: np.ndarray, start: int, end: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """A ``length``-sample window of ``wave`` holding [start, end) at a uniformly random offset.

    The utterance's own context (the carrier phrase) comes along; outside the
    utterance the clip is zero. A keyword longer than the clip is centered.
    """
    return place_keyword_span(wave, start, end, length, rng)[0]


def place_keyword_span(
    wave: np.ndarray, start: int, end: int, length: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``place_keyword``, and where the keyword landed: float32 [start, end) in clip samples, clamped to the clip."""
    span = end - start
    if span >= length:
        first = start + (span - length) // 2
    else:
        first = int(rng.integers(end - length, start + 1))
    clip = np.zeros(length, dtype=np.float32)
    lo, hi = max(first, 0), min(first + length, len(wave))
    if hi > lo:
        clip[lo - first : hi - first] = wave[lo:hi]
    return clip, np.clip(np.array([start - first, end - first], dtype=np.float32), 0, length)


class EpochSampler(Sampler[int]):
    """Yields one epoch's keys in a seeded order, sharded across DDP ranks.

    Lightning calls ``set_epoch`` at the start of every epoch (and when it
    resumes), so a resumed run draws the same clips as an uninterrupted one.

    Without weights an epoch is a permutation, keyed ``epoch * N + index``.
    With ``weights`` (one per item, >= 0; normalized here) it is N draws with
    replacement, so an item is shown about ``N * weight`` times (and some not
    at all): the ``r``-th draw of an item in epoch ``e`` is keyed
    ``(e * N + r) * N + index``, which ``ClipDataset`` reads as epoch
    ``e * N + r`` (``r < N``): every draw gets its own clip (offset, context,
    noise) rather than a copy, and no key is used twice in a run.
    """

    def __init__(self, size: int, seed: int, shuffle: bool, weights: np.ndarray | None = None) -> None:
        self.size, self.seed, self.shuffle, self.epoch = size, seed, shuffle, 0
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if len(weights) != size or not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
                raise ValueError(f"sampling weights: expected {size} finite weights >= 0, not all 0; got {len(weights)}")
            weights = weights / weights.sum()
        self.weights = weights

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _shard(self) -> tuple[int, int]:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def _keys(self) -> np.ndarray:
        """This epoch's keys for every rank, in order."""
        if not self.shuffle:
            return np.arange(self.size)
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.weights is None:
            return self.epoch * self.size + rng.permutation(self.size)
        indices = rng.choice(self.size, size=self.size, replace=True, p=self.weights)
        seen: dict[int, int] = {}
        repeats = np.empty(self.size, dtype=np.int64)
        for position, index in enumerate(indices.tolist()):
            repeats[position] = seen.get(index, 0)
            seen[index] = repeats[position] + 1
        return (self.epoch * self.size + repeats) * self.size + indices

    def __iter__(self) -> Iterator[int]:
        rank, world = self._shard()
        keys = self._keys()
        per_rank = len(keys) // world if self.shuffle and world > 1 else None
        shard = keys[rank::world][:per_rank] if world > 1 else keys
        return iter(shard.tolist())

    def __len__(self) -> int:
        rank, world = self._shard()
        if world == 1:
            return self.size
        return self.size // world if self.shuffle else len(range(rank, self.size, world))


def synthesis_engine(row: Mapping[str, Any]) -> str | None:
    """The speech engine that spoke a row; None for a noise file or a user's own recording."""
    return str(row.get("engine")) if row["kind"] != "noise" and row.get("engine") != corpus.USER_ENGINE else None


def engine_weights(rows: Sequence[Mapping[str, Any]], power: float) -> np.ndarray | None:
    """Sampling weights that draw each engine's utterances in proportion to ``count ** power``.

    The corpus holds very different amounts per engine (espeak-ng 3,000
    utterances, Kokoro 270): drawn as they are, the training set is mostly the
    engine least like natural speech. ``power`` 1 keeps the corpus's shares
    (None: a plain permutation, as without weights), 0 draws every engine
    equally often, 0.5 is in between. Noise files and a user's own recordings
    keep their share; within an engine every row is drawn equally often.
    Only the clip's own utterance is drawn this way: the speech put around it
    (context) and the phonetic task's utterances are drawn as before. Engines
    differ in their share of keywords, so the positive share moves a little
    (0.33 at power 1, 0.35 at power 0 on the cross-engine folds).
    """
    if power == 1.0:
        return None
    if not (math.isfinite(power) and power >= 0):
        raise ValueError(f"data.loader.engine_power must be a number >= 0, got {power}")
    groups = [synthesis_engine(r) for r in rows]
    counts = Counter(group for group in groups if group is not None)
    if not counts:
        return None
    speech_rows = sum(counts.values())
    mass = {engine: count ** power for engine, count in counts.items()}
    share = {engine: speech_rows * m / sum(mass.values()) for engine, m in mass.items()}  # rows' worth of draws
    weights = np.array([1.0 if g is None else share[g] / counts[g] for g in groups], dtype=np.float64)
    return weights / weights.sum()


def with_user_share(rows: Sequence[Mapping[str, Any]], weights: np.ndarray | None, share: float | None) -> np.ndarray | None:
    """Sampling weights that give a user's own recordings ``share`` of the draws (None: their share of the rows).

    Fine-tuning on your own voice mixes a few dozen recordings into thousands
    of synthesized clips: drawn as they are, they are under 1 % of an epoch
    and barely move the model. A share (e.g. 0.2) draws them that often, with
    replacement, every draw a new clip (``EpochSampler``); the rest keep their
    relative weights (``weights``, or uniform).
    """
    if share is None:
        return weights
    share = float(share)
    if not (0.0 < share < 1.0):
        raise ValueError(f"data.loader.user_share must be between 0 and 1 (exclusive), got {share}")
    mine = np.array([r.get("engine") == corpus.USER_ENGINE for r in rows], dtype=bool)
    if not mine.any():
        raise ValueError("data.loader.user_share is set but the training split holds none of your recordings (data.user_folder)")
    if mine.all():
        return weights
    base = np.full(len(rows), 1.0 / len(rows)) if weights is None else np.asarray(weights, dtype=np.float64)
    out = np.where(mine, base * share / base[mine].sum(), base * (1.0 - share) / base[~mine].sum())
    return out / out.sum()


def training_engines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The engines that spoke the given rows (noise and the user's recordings excluded), sorted: the same classes in every run."""
    return sorted({engine for engine in map(synthesis_engine, rows) if engine is not None})


class KeywordDataModule(L.LightningDataModule):
    """Builds the corpus if needed, then serves train / val / test / heldout clips."""

    EVAL_SPLITS = ("test", "heldout")

    def __init__(self, data: Mapping[str, Any], corpus_root: str, seed: int, phonetic_task: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.cfg, self.corpus_root, self.seed = data, Path(corpus_root), seed
        self.phonetic = phonetic.phonetic_settings(phonetic_task)
        self.phonemes: tuple[str, ...] = ()  # the phonetic task's classes (after CTC's blank), when it is on
        self.utterances: utterances.UtteranceDataset | None = None
        clips = data["clips"]
        self.sample_rate = int(clips["sample_rate"])
        self.clip_samples = int(round(clips["clip_seconds"] * self.sample_rate))
        self.loader = dict(data["loader"])
        self.datasets: dict[str, ClipDataset] = {}
        self.domains: list[str] = []  # the training split's engines, sorted: the adversary's classes

    @property
    def manifest_path(self) -> Path:
        return corpus.corpus_dir(self.cfg["corpus"], self.corpus_root) / "manifest.csv"

    @property
    def use_synthetic(self) -> bool:
        return bool(self.cfg.get("use_synthetic", True))

    def prepare_data(self) -> None:
        """Synthesize the corpus once (rank 0 only); a cached corpus is reused only if its settings match."""
        if self.use_synthetic:
            corpus.build_corpus(self.cfg["corpus"], self.corpus_root)

    def _rows(self) -> list[dict]:
        """Manifest rows with absolute paths: the synthetic corpus and/or the user's own folder."""
        rows = corpus.read_manifest(self.manifest_path) if self.use_synthetic else []
        user_folder = self.cfg.get("user_folder")
        if user_folder:
            rows += corpus.user_corpus_rows(user_folder, self.seed)
        if not rows:
            raise ValueError("no training data: data.use_synthetic is false and data.user_folder is not set")
        return rows

    def audio_digests(self) -> dict[str, str]:
        """Per engine, a digest of the audio trained and tested on (``corpus.audio_digests``): what to compare
        when one config and seed give other figures on another machine."""
        return corpus.audio_digests(self._rows())

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        rows = self._rows()
        by_split: dict[str, list[dict]] = {}
        for row in rows:
            by_split.setdefault(row["split"], []).append(row)
        train_aug = augment_config(self.cfg.get("augment"), self.sample_rate)
        eval_aug = augment_config(self.cfg.get("eval_augment"), self.sample_rate)
        self.domains = training_engines(by_split.get("train", []))
        # real music and ambience join each split's noise pool (split by source file; heldout uses test's)
        real_noise = backgrounds.load_backgrounds(self.cfg.get("backgrounds"), self.corpus_root.parent / "backgrounds")
        for split, augmentation in (("train", train_aug), ("val", eval_aug), ("test", eval_aug), ("heldout", eval_aug)):
            split_rows = by_split.get(split, [])
            if not split_rows:
                log.warning("split %s is empty", split)
                continue
            # noise files are negatives ("no speech") and, within their split, the background pool;
            # a split without noise of its own (the held-out voice) borrows the test split's
            noise_rows = [r for r in split_rows if r["kind"] == "noise"] or [
                r for r in by_split.get("test", []) if r["kind"] == "noise"
            ]
            rooms = ()  # the simulated rooms: a seeded bank, built once and cached under data/rirs/
            if augmentation and augmentation.rir_prob > 0:
                rooms = augment.rir_bank(augmentation, self.corpus_root.parent / "rirs")
            self.datasets[split] = ClipDataset(
                split_rows,
                load_waves(split_rows, Path("/")),
                load_waves(noise_rows, Path("/"), extra=real_noise.get("test" if split == "heldout" else split, [])),
                self.clip_samples,
                self.seed,
                augmentation,
                rooms=rooms,
                keyword=str(self.cfg.get("corpus", {}).get("keyword", DEFAULT_KEYWORD)),
                domains=self.domains,
            )
        for split, dataset in self.datasets.items():
            positives = int(dataset.labels.sum())
            log.info("%s: %d clips (%d keyword, %d other)", split, len(dataset), positives, len(dataset) - positives)
        if self.phonetic["weight"] > 0 and "train" in self.datasets:
            self.setup_phonetic(self.datasets["train"])

    def setup_phonetic(self, train: ClipDataset) -> None:
        """The phonetic task's utterances: the training split's spoken rows, whole, with their phonemes."""
        settings, spoken = self.phonetic, set(utterances.spoken_rows(train.rows))
        pronunciations = phonetic.lexicon(str(train.rows[i]["text"]) for i in spoken)
        self.phonemes = phonetic.inventory(pronunciations)
        targets = [phonetic.phoneme_targets(str(row["text"]), pronunciations, self.phonemes) if i in spoken else []
                   for i, row in enumerate(train.rows)]
        self.utterances = utterances.UtteranceDataset(
            train.waves, targets, train.noises,
            draws_per_epoch=self.utterance_draws(world_size=1),  # train_dataloader sets it for the trainer's ranks
            window_samples=int(round(settings["window_seconds"] * self.sample_rate)),
            margin_samples=int(round(settings["margin_seconds"] * self.sample_rate)),
            seed=self.seed, augmentation=train.augmentation, rooms=train.rooms,
        )
        log.info("phonetic task: %d of %d spoken utterances fit a %.1f s window (%d longer ones left out), %d phonemes",
                 len(self.utterances.fits), len(spoken), settings["window_seconds"], len(spoken) - len(self.utterances.fits),
                 len(self.phonemes))

    def utterance_draws(self, world_size: int) -> int:
        """Utterances one epoch draws: on every rank at least as many utterance batches as clip batches."""
        per_rank = -(-len(self.datasets["train"]) // world_size)
        clip_batches = -(-per_rank // int(self.loader["batch_size"]))
        return clip_batches * self.phonetic["batch_size"] * world_size

    def training_weights(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray | None:
        """How often each training row is drawn: engines by ``engine_power``, your recordings by ``user_share``."""
        weights = engine_weights(rows, float(self.loader.get("engine_power", 1.0)))
        return with_user_share(rows, weights, self.loader.get("user_share"))

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset = self.datasets[split]
        workers = int(self.loader.get("num_workers", 0))
        return DataLoader(
            dataset,
            batch_size=int(self.loader["batch_size"]),
            sampler=EpochSampler(len(dataset), self.seed, shuffle,
                                 weights=self.training_weights(dataset.rows) if shuffle else None),
            num_workers=workers,
            persistent_workers=workers > 0,
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader | CombinedLoader:
        """The keyword clips; with the phonetic task on, each batch also holds a batch of whole utterances
        (``{"clips": ..., "utterances": ...}``). The epoch is the clips' (``min_size``): every rank draws at
        least as many utterance batches as it has clip batches, so no clip batch is cut or repeated. The
        utterances get workers of their own (``data.loader.num_workers`` more processes)."""
        clips = self._loader("train", shuffle=True)
        if self.utterances is None:
            return clips
        world_size = self.trainer.world_size if self.trainer is not None else 1
        self.utterances.draws = self.utterance_draws(world_size)
        workers = int(self.loader.get("num_workers", 0))
        spoken = DataLoader(
            self.utterances,
            batch_size=self.phonetic["batch_size"],
            sampler=EpochSampler(len(self.utterances), self.seed, shuffle=True),
            num_workers=workers,
            persistent_workers=workers > 0,
            collate_fn=utterances.collate,
        )
        return CombinedLoader({"clips": clips, "utterances": spoken}, mode="min_size")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> list[DataLoader]:
        return [self._loader(split, shuffle=False) for split in self.test_splits]

    @property
    def test_splits(self) -> list[str]:
        return [s for s in self.EVAL_SPLITS if s in self.datasets]
