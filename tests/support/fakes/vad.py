"""The energy VAD the simulators use, at the threshold the tests' tone microphone was tuned for."""

from __future__ import annotations

from typing import Any

from auditagent_demo.audio_io import EnergyVAD as _PackageEnergyVAD


class EnergyVAD(_PackageEnergyVAD):
    def __init__(self, *, threshold: float = 500.0, **kwargs: Any) -> None:
        super().__init__(threshold=threshold, **kwargs)


__all__ = ["EnergyVAD"]
