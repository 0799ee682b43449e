"""NAS Workbench: neural-architecture performance prediction and search, interactively.

Subpackages: ``spaces`` (NAS-Bench-101/201 cells and networks), ``benchmarks`` (bundled tables),
``data`` (CIFAR and a device-side loader), ``training`` (the training loop with snapshots),
``features`` (NAP2 weight/gradient statistics), ``store`` (the run store), ``collect``
(resumable parallel collection), ``evaluation``, ``viz`` and ``cli``.
"""

__version__ = "0.1.0"
