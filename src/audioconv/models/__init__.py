"""Detectors: fully convolutional in time, wave [B, T] -> frame logits [B, T']."""

from audioconv.models.base import Detector
from audioconv.models.conv1d import Conv1dDetector
from audioconv.models.ensemble import Ensemble
from audioconv.models.pitch_gate import PitchGated
from audioconv.models.spectrogram import SpectrogramDetector

__all__ = ["Detector", "Conv1dDetector", "Ensemble", "PitchGated", "SpectrogramDetector"]
