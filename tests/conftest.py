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


# Whole-network parity tests are marked `slow`: a CI matrix runs them in one job, the others set NETSPEC_SKIP_SLOW=1.
import pytest  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("NETSPEC_SKIP_SLOW") != "1":
        return
    skip = pytest.mark.skip(reason="slow whole-network parity test: NETSPEC_SKIP_SLOW=1 (another CI job runs it)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
