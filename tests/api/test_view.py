"""The API depends on the `ServiceView` Protocol, never on the service that satisfies it."""

from __future__ import annotations

import subprocess
import sys

from streamer.api.view import ServiceView
from streamer.service import Service


def _a_service_is_a_view(service: Service) -> ServiceView:
    """Never called: mypy checks here that `Service` has everything the API reads, typed alike."""
    return service


def test_no_api_module_loads_the_service_at_run_time() -> None:
    """Importing every module of `streamer.api` leaves `streamer.service` unloaded: the
    composition root sits above the API, so an import of it from below would be a cycle."""
    code = (
        "import importlib, pkgutil, sys, streamer.api as api\n"
        "for module in pkgutil.walk_packages(api.__path__, 'streamer.api.'):\n"
        "    importlib.import_module(module.name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('streamer.service')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
