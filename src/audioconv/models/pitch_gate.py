"""Speaker normalization from pitch, built into the detector: each frame scored at the warp its voice suggests.

Why: scored again with its mel filterbank warped (``audioconv.warp_probe``), a
model trained without an engine finds that engine's high voices best lowered
and its low voices best raised (README, "a warp probe"): its recall is highest
for voices near the ones it trained on. Choosing, for every frame, the warp
that moves the voice it hears toward there lifted pooled recall on unseen
engines at <= 1 false alarm an hour from 0.156 to 0.219 (three seeds, pitch by
pYIN), with no retraining.

``PitchGated`` does that inside one fully convolutional detector:

- **members**: copies of one mel-spectrogram detector, each with its mel
  filterbank warped by one factor (``features.warp_filterbank``): factor ``w``
  hears every frequency multiplied by ``w``;
- **pitch** (``VoicePitch``): for each output frame, the mean log F0 of the
  voiced 45 ms pitch frames inside that frame's own receptive field (so frame
  ``i`` still depends on samples ``[i * hop, i * hop + receptive_field)`` only,
  and whole, chunked and streamed scans agree);
- **the gate**: frame ``i`` takes the logit of the member whose factor is
  nearest ``(f0 / reference_hz) ** -exponent`` (a high voice lowered, a low one
  raised); with too few voiced pitch frames, the member nearest 1.

Pitch is found by autocorrelation (Boersma 1993): each pitch frame's spectrum
below ``band_hz`` (an FFT; for ONNX export a strided convolution with windowed
DFT kernels, as the spectrogram front end's ``dft_as_conv``), its power turned into the autocorrelation by a fixed
cosine matrix, divided by the window's own autocorrelation, and the best lag
between ``1 / max_hz`` and ``1 / min_hz`` taken with a small bias toward short
lags (an octave below the true pitch scores as high as the pitch itself). It
is cruder than pYIN; the gate only needs which of a few warps a voice is
nearest.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from audioconv.features import LogSpectrogram, warp_filterbank
from audioconv.geometry import TimeLayer
from audioconv.models.base import Combined, Detector, run_branches

PITCH_FRAME_SECONDS = 0.045  # 2.7 periods at 60 Hz: the lowest pitch tracked needs two
GATE_FACTORS = (0.85, 1.0, 1.15)  # three warps did about as well as nine in the probe (README)


def warped_copy(detector: Detector, factor: float) -> Detector:
    """A copy of a mel-spectrogram detector that hears every frequency multiplied by ``factor`` (its mel
    filterbank warped by ``features.warp_filterbank``); the detector itself is left alone."""
    mel = getattr(getattr(detector, "frontend", None), "mel", None)
    if mel is None:
        raise ValueError(f"a warp needs a detector with a mel front end, not a {type(detector).__name__}")
    warped = copy.deepcopy(detector)
    if factor != 1.0:
        warped.frontend.mel = warp_filterbank(mel, torch.tensor([factor], dtype=mel.dtype))[0]
    return warped


class FramePitch(nn.Module):
    """wave [B, T] -> [B, 2, frames]: per pitch frame, voiced (0 or 1) and voiced * log2(F0 / 1 Hz).

    Frame ``j`` covers samples ``[j * hop, j * hop + frame)``, unpadded (a window layer, like the spectrogram's).
    """

    def __init__(self, frame: int, hop: int, sample_rate: int = 16_000, min_hz: float = 60.0, max_hz: float = 400.0,
                 band_hz: float = 1000.0, voicing: float = 0.5, octave_cost: float = 0.02,
                 silence: float = 1e-7) -> None:
        super().__init__()
        if not 0 < min_hz < max_hz < band_hz <= sample_rate / 2:
            raise ValueError(f"need 0 < min_hz < max_hz < band_hz <= sample_rate / 2, got {min_hz}, {max_hz}, {band_hz}")
        lags = torch.arange(math.floor(sample_rate / max_hz), math.ceil(sample_rate / min_hz) + 1)
        if lags[-1] >= frame // 2:
            raise ValueError(f"a pitch frame of {frame} samples is too short for {min_hz} Hz")
        self.frame, self.hop, self.sample_rate = frame, hop, sample_rate
        self.voicing, self.silence = voicing, silence
        bins = torch.arange(int(band_hz * frame / sample_rate) + 1, dtype=torch.float64)
        n = torch.arange(frame, dtype=torch.float64)
        window = torch.hann_window(frame, periodic=False, dtype=torch.float64)
        angle = 2 * math.pi * bins[:, None] * n[None, :] / frame
        kernels = torch.cat([torch.cos(angle), -torch.sin(angle)]) * window  # [2 * bins, frame]
        # power at bin k -> autocorrelation at lag L (circular, band-limited): sum_k weight_k P_k cos(2 pi k L / N)
        weight = torch.where(bins == 0, 1.0, 2.0)
        all_lags = torch.cat([torch.zeros(1, dtype=torch.float64), lags.to(torch.float64)])
        cosines = weight[None, :] * torch.cos(2 * math.pi * all_lags[:, None] * bins[None, :] / frame)
        window_acf = torch.stack([(window[: frame - lag] * window[lag:]).sum() for lag in lags.tolist()]) / (window**2).sum()
        self.bins = bins.numel()
        self.dft_as_conv = False  # the DFT as a strided convolution (for ONNX export, as ``FramedSpectrogram``'s)
        self.register_buffer("window", window.float(), persistent=False)
        self.register_buffer("kernels", kernels.unsqueeze(1).float(), persistent=False)
        self.register_buffer("cosines", cosines.float(), persistent=False)  # [1 + lags, bins]
        self.register_buffer("window_acf", window_acf.float()[:, None], persistent=False)  # [lags, 1]
        self.register_buffer("log2_hz", torch.log2(sample_rate / lags.to(torch.float64)).float()[:, None], persistent=False)
        self.register_buffer("octave_bias", (-octave_cost * torch.log2(lags / lags[0])).float()[:, None],
                             persistent=False)
        self.register_buffer("power_floor", torch.tensor(silence * (window**2).sum().item()), persistent=False)

    @property
    def time_layers(self) -> list[TimeLayer]:
        return [TimeLayer("pitch_frame", self.frame, self.hop)]

    def power(self, wave: torch.Tensor) -> torch.Tensor:
        """wave [B, T] -> power of each pitch frame's windowed spectrum below ``band_hz`` [B, bins, frames]."""
        if self.dft_as_conv:
            spectrum = F.conv1d(wave.unsqueeze(1), self.kernels, stride=self.hop)  # [B, 2 * bins, frames]
            real, imaginary = spectrum.chunk(2, dim=1)
            return real * real + imaginary * imaginary
        frames = wave.unfold(-1, self.frame, self.hop) * self.window  # [B, frames, frame]
        spectrum = torch.fft.rfft(frames, dim=-1)[..., : self.bins]
        return (spectrum.real.square() + spectrum.imag.square()).transpose(1, 2)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        acf = torch.matmul(self.cosines, self.power(wave))  # [B, 1 + lags, frames]
        energy = acf[:, :1]
        clarity = acf[:, 1:] / energy.clamp_min(1e-12) / self.window_acf  # ~1 at the period of a periodic frame
        best = (clarity + self.octave_bias).argmax(dim=1, keepdim=True)  # [B, 1, frames]
        peak = clarity.gather(1, best)
        voiced = ((peak > self.voicing) & (energy > self.power_floor)).to(wave.dtype)
        log2_f0 = self.log2_hz[:, 0][best]
        return torch.cat([voiced, voiced * log2_f0], dim=1)


@dataclass(frozen=True)
class GateRule:
    """Which warp a voice gets from its pitch: the one rule of the gate (``PitchGated``) and of VTLN training
    (``ClipPitchWarp``), held once so the two cannot drift apart.

    factors: the warps to choose from (sorted here; one of them should be 1).
    reference_hz: the pitch left unwarped (factor 1), roughly the middle of the training voices.
    exponent: warp = (f0 / reference_hz) ** -exponent; ~0.3 is the ratio of formant to pitch differences
        between adult voices.
    min_voiced: fewest voiced pitch frames for the pitch to count; with fewer, the factor nearest 1.
    """

    factors: tuple[float, ...] = GATE_FACTORS
    reference_hz: float = 130.0
    exponent: float = 0.3
    min_voiced: int = 5

    def __post_init__(self) -> None:
        factors = tuple(sorted(float(f) for f in self.factors))
        if not factors or not factors[0] > 0 or len(set(factors)) < len(factors):
            raise ValueError(f"warp factors must be positive and distinct, got {list(self.factors)}")
        if not self.reference_hz > 0 or self.min_voiced < 1:
            raise ValueError(f"need reference_hz > 0 and min_voiced >= 1, got {self.reference_hz}, {self.min_voiced}")
        object.__setattr__(self, "factors", factors)
        object.__setattr__(self, "reference_hz", float(self.reference_hz))
        object.__setattr__(self, "exponent", float(self.exponent))
        object.__setattr__(self, "min_voiced", int(self.min_voiced))

    @property
    def unvoiced(self) -> int:
        """The index of the factor nearest 1: what too little voicing gets."""
        return min(range(len(self.factors)), key=lambda i: abs(self.factors[i] - 1.0))

    @property
    def settings(self) -> dict[str, float | int | list[float]]:
        """The rule as keyword arguments (``PitchGated``'s, and what a saved config records)."""
        return {"factors": list(self.factors), "reference_hz": self.reference_hz, "exponent": self.exponent,
                "min_voiced": self.min_voiced}

    def choose(self, log2_f0: torch.Tensor, voiced: torch.Tensor) -> torch.Tensor:
        """Mean log2 F0 and the count of voiced pitch frames it came from (same shape, any) -> the index of
        each one's factor: the factor nearest ``(f0 / reference_hz) ** -exponent``, or the one nearest 1
        with fewer than ``min_voiced`` voiced frames (a count may be fractional: a share times a size)."""
        log_warp = -self.exponent * math.log(2) * (log2_f0 - math.log2(self.reference_hz))
        factors = torch.tensor(self.factors, dtype=log2_f0.dtype, device=log2_f0.device)
        factors = factors.reshape(-1, *([1] * log2_f0.dim()))
        nearest = (factors - torch.exp(log_warp)[None]).abs().argmin(dim=0)
        return torch.where(voiced >= self.min_voiced - 0.5, nearest, torch.full_like(nearest, self.unvoiced))


class ClipPitchWarp(nn.Module):
    """VTLN in training: each clip's mel filterbank warped by the factor the gate would give its voice.

    Why: ``PitchGated`` moves an unseen voice toward the pitch the model is at
    ease with, but the model itself trained on voices at their own heights.
    Trained with every clip moved the same way (the mean log F0 of the clip's
    voiced pitch frames and the gate's ``GateRule``; clips with fewer than
    ``min_voiced`` voiced frames stay at 1), the model learns in the space the
    gate scores in: speaker normalization on both sides, as in ASR's VTLN.
    Deterministic (no draws); the caller applies it in training only.
    """

    def __init__(self, sample_rate: int = 16_000, hop: int = 320, rule: GateRule = GateRule()) -> None:
        super().__init__()
        self.pitch = FramePitch(round(PITCH_FRAME_SECONDS * sample_rate), hop, sample_rate)
        self.rule = rule
        self.register_buffer("factors", torch.tensor(rule.factors), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """wave [B, T] -> [B] each clip's warp factor."""
        voiced, weighted = self.pitch(wave).sum(dim=-1).unbind(dim=1)  # [B] voiced frames, sum of their log2 F0
        return self.factors[self.rule.choose(weighted / voiced.clamp_min(1.0), voiced)]


def trained_rule(detector: Detector) -> GateRule:
    """The gate a detector belongs in: the rule it was trained in with VTLN (``pitch_warp``), else the default."""
    warp = getattr(detector, "pitch_warp", None)
    return warp.rule if isinstance(warp, ClipPitchWarp) else GateRule()


class VoicePitch(Detector):
    """wave [B, T] -> [B, 2, T']: per output frame, the share of voiced pitch frames in its receptive field and
    their mean log2 F0 times that share.

    A ``Detector`` for its geometry only (its output is no logit): the same hop
    and receptive field as the detector it serves, so its frames line up, and
    streaming walks into it like an ensemble member (``Detector.branches``).
    """

    def __init__(self, hop: int, receptive_field: int, sample_rate: int = 16_000, **pitch: float) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        frame = round(PITCH_FRAME_SECONDS * sample_rate)
        frame += (receptive_field - frame) % hop  # so that whole pitch frames tile the receptive field
        self.pitch = FramePitch(frame, hop, sample_rate, **pitch)
        self.frames_per_field = (receptive_field - frame) // hop + 1  # pitch frames in one receptive field
        self.pool = nn.AvgPool1d(self.frames_per_field, stride=1)

    @property
    def time_layers(self) -> list[TimeLayer]:
        return self.pitch.time_layers + [TimeLayer("pitch_pool", self.frames_per_field)]

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.pool(self.pitch(wave))


class PitchGated(Combined):
    """A mel-spectrogram detector that scores each frame with its filterbank warped to suit the voice's pitch.

    Args:
        detector: a trained ``SpectrogramDetector`` with a mel front end; copied once per factor.
        factors, reference_hz, exponent, min_voiced: the ``GateRule`` that picks each frame's member
            (its defaults: the gate that ships).
    """

    def __init__(self, detector: Detector, factors: Sequence[float] = GATE_FACTORS, reference_hz: float = 130.0,
                 exponent: float = 0.3, min_voiced: int = 5) -> None:
        rule = GateRule(tuple(factors), reference_hz, exponent, min_voiced)
        super().__init__([warped_copy(detector, factor) for factor in rule.factors])
        self.voice = VoicePitch(detector.hop, detector.receptive_field, detector.sample_rate)
        self.rule = rule

    @property
    def factors(self) -> list[float]:
        return list(self.rule.factors)

    @property
    def settings(self) -> dict[str, float | int | list[float]]:
        """The gate's constructor arguments (all but the detector): what a saved config records."""
        return self.rule.settings

    @property
    def unwarped(self) -> Detector:
        """The member nearest factor 1: the detector as trained (what unvoiced frames get)."""
        return self.members[self.rule.unvoiced]

    @property
    def branches(self) -> list[Detector]:
        return [*self.members, self.voice]

    def choices(self, voice: torch.Tensor) -> torch.Tensor:
        """[B, 2, T'] from ``VoicePitch`` -> [B, T'] the index of each frame's member."""
        share, weighted = voice[:, 0], voice[:, 1]
        return self.rule.choose(weighted / share.clamp_min(1e-6), share * self.voice.frames_per_field)

    def shares_magnitude(self) -> bool:
        """Whether the members can score from one shared FFT: at inference, with their own front ends (a
        streaming copy's are stateful windows, one per member, and each must see every push)."""
        if self.training or not all(isinstance(member.frontend, LogSpectrogram)
                                    and hasattr(member, "logits_from_magnitude") for member in self.members):
            return False
        framing = {(m.frontend.spectrogram.n_fft, m.frontend.spectrogram.hop_length,
                    m.frontend.spectrogram.dft_as_conv) for m in self.members}
        return len(framing) == 1  # copies of one detector: always, unless someone rebuilt a member

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if self.shares_magnitude():
            # the members differ only in their mel filterbanks: one framed FFT serves them all (the FFT, or its
            # strided-convolution form in an ONNX export, is most of a member's cost)
            magnitude = self.members[0].frontend.spectrogram(wave)
            logits = [member.logits_from_magnitude(magnitude) for member in self.members]
            voice = self.voice(wave)
        else:
            *logits, voice = run_branches(self.branches, wave)
        return self.combine(logits, voice)

    def combine(self, logits: Sequence[torch.Tensor], voice: torch.Tensor) -> torch.Tensor:
        """The members' frame logits (one [B, T'] each) and ``VoicePitch``'s output -> the gated logits [B, T']:
        each frame the logit of its member (``choices``), times the folded temperature."""
        return torch.stack(list(logits)).gather(0, self.choices(voice)[None]).squeeze(0) * self.output_scale
