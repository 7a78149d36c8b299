"""The course's datasets: all shipped in ``assets/`` or generated from a seed, never downloaded.

- ``digits_av``: aligned handwritten-digit images, spoken digits and captions (chapters 01-06).
- ``interaction``: pairs whose label depends on how two modalities combine (chapter 05).
- ``clinic``: a synthetic clinic of X-ray-like images, reports and breath sounds (chapter 08).
"""
