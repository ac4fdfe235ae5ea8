"""Jobs with real splat outputs for the viewer tests, stored as the node keeps them."""

from __future__ import annotations

import uuid

from app import CAPABILITY
from app.records import JobRecord, NewJob
from app.services import Services
from tests.support.scenes import write_room_outputs


def services_of(app: object) -> Services:
    services: Services = app.state.services  # type: ignore[attr-defined]
    return services


def succeeded_room_job(services: Services, n: int = 3000, *, stills: bool = False) -> JobRecord:
    """A succeeded job whose kept outputs are the room scene's exports (and camera path)."""
    store = services.store
    record = store.create(NewJob(source="push", task_id=str(uuid.uuid4()), capability=CAPABILITY))
    store.mark_running(record.id)
    store.add_event(
        record.id,
        {"level": "info", "stage": "python", "message": "training metrics", "psnr": 27.5},
    )
    write_room_outputs(services.viewer_outputs.kept_root / record.id, n, stills=stills)
    return store.finish(record.id, "succeeded")
