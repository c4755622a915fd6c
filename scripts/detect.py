#!/usr/bin/env python
"""Find the spoken keyword in audio files or a live stream: `python scripts/detect.py FILE [FILE ...]`.

A thin wrapper around ``audioconv.cli.detect`` (installed as ``audioconv-detect``):
see that module, or ``--help``, for the options.
"""

import sys

from audioconv.cli.detect import main, reserve_stdout  # noqa: F401 - reserve_stdout: tests load it from here

if __name__ == "__main__":
    sys.exit(main())
