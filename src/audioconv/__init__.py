"""audioconv: spot a spoken keyword with small convolutional networks.

A CNN is a small detector scanned along the signal with shared weights; this
package trains such detectors (raw-waveform and spectrogram front ends) and scans
long recordings with them.

The Python API (``audioconv.api``), loaded on first use so that ``import
audioconv`` stays cheap and never imports torch::

    import audioconv
    det = audioconv.load_detector("spectrogram")   # shipped weights, torch if installed else ONNX
    events = det.detect("meeting.wav")             # [Event(file, start, end, score), ...]
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it; imported on first access (PEP 562)
_LAZY = {
    "load_detector": "audioconv.api",
    "Detector": "audioconv.api",
    "Stream": "audioconv.api",
    "FrameScores": "audioconv.api",
    "BackendUnavailable": "audioconv.api",
    "Event": "audioconv.detect",
    "AudioError": "audioconv.audio",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'audioconv' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
