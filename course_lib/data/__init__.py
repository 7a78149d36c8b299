"""The course's datasets: all shipped in ``assets/`` or generated from a seed, never downloaded.

- ``digits_av``: aligned handwritten-digit images, spoken digits and captions (chapters 01-06).
- ``interaction``: pairs whose label depends on how two modalities combine (chapter 05).
- ``clinic``: a synthetic clinic of X-ray-like images, reports and breath sounds (chapter 08).
"""

from course_lib.data.clinic import ClinicData, load_clinic  # noqa: F401
from course_lib.data.digits_av import DIGIT_NAMES, DigitsAV, load_digits_av, load_mri_slice  # noqa: F401
from course_lib.data.interaction import DigitMatch, MatchPairs, load_digit_match, sample_match_pairs  # noqa: F401,E501
