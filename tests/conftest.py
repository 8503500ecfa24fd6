"""Hypothesis profiles: `ci` (quick, the default) and `long` (thousands of examples): HYPOTHESIS_PROFILE=long."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.register_profile(
    "long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The suite tests netspec's own kinds: plugins installed in this environment (the README's example, a user's own)
# are not loaded here. The plugin tests install their own, into temporary folders, and arm loading themselves.
from netspec import registry  # noqa: E402

registry._state["armed"] = False


# Tests that take seconds each (whole-network parity, every spec through torch.compile, Inductor, ONNX Runtime) are
# marked `slow`. pyproject's addopts leave them out (`-m 'not slow'`: the README's `python -m pytest`);
# `python -m pytest -m slow` runs only them, and .ci/run runs both, one after the other.
import pytest  # noqa: E402


def pytest_report_header(config: pytest.Config) -> str | None:
    if config.option.markexpr == "not slow":
        return "tests marked `slow` are left out (run them with `python -m pytest -m slow`, everything with -m 'slow or not slow')"
    return None
