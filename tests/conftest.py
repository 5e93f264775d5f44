"""Shared test settings: hypothesis profiles and helpers.

Profiles: ``dev`` (quick, the default locally) and ``ci`` (more examples, derandomized so a CI
failure reproduces). ``ci`` is chosen when the environment has ``CI=true``; override with
``HYPOTHESIS_PROFILE``.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev", max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci", max_examples=100, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
# CI sets CI=true; everyone else gets the quick profile unless they ask.
_default = "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default))
