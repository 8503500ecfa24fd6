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
# marked `slow`. They run by default; NETSPEC_SKIP_SLOW=1 leaves them out (deselected, counted in pytest's summary)
# and `python -m pytest -m slow` runs only them: .ci/run runs the suite the first way, then the slow set once.
import pytest  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("NETSPEC_SKIP_SLOW") != "1":
        return
    slow = [item for item in items if "slow" in item.keywords]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if "slow" not in item.keywords]


def pytest_report_header(config: pytest.Config) -> str | None:
    if os.environ.get("NETSPEC_SKIP_SLOW") == "1":
        return "NETSPEC_SKIP_SLOW=1: tests marked `slow` are deselected (run them with `python -m pytest -m slow`)"
    return None
