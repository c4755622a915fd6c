#!/usr/bin/env python
"""Export a detector to ONNX or TorchScript: `python scripts/export.py --model spectrogram --format onnx OUT`.

A thin wrapper around ``audioconv.cli.export`` (installed as ``audioconv-export``).
"""

import sys

from audioconv.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
