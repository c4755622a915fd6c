"""Command-line entry points (``[project.scripts]``): ``audioconv-detect`` and ``audioconv-export``.

Each module parses its arguments first and imports the heavy parts of the
package afterwards, so ``--help`` and usage errors are instant.
"""
