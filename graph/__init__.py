"""The ecosystem graph: vocabulary, validated snapshots, stores and the numeric export."""

from graph.errors import ContagionError, SnapshotFormatError, SnapshotValidationError, StoreError
from graph.export import SystemArrays, compile_system, health_factors
from graph.snapshot import Manifest, Snapshot

__all__ = [
    "ContagionError",
    "Manifest",
    "Snapshot",
    "SnapshotFormatError",
    "SnapshotValidationError",
    "StoreError",
    "SystemArrays",
    "compile_system",
    "health_factors",
]
