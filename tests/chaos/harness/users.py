"""The chaos run's users: each a client of the public API, and the jobs they submit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Optional

from gpu_export import Client


@dataclass
class User:
    api: Client  # retried while the stack is away (its restart)
    probe: Client  # one quick try: a look at a job between faults

    @classmethod
    def sign_up(cls, url: str, retry_for_s: float) -> "User":
        api = Client(url, retry_for_s=retry_for_s)
        api.sign_up_anonymous()
        return cls(api, Client(url, api.token, timeout_s=5))

    def close(self) -> None:
        self.api.close()
        self.probe.close()


@dataclass
class Submission:
    user: User
    spec: dict
    kind: str
    expected_frames: int
    ref: dict = field(default_factory=dict)  # the uninterrupted reference render
    idempotency_key: str = field(default_factory=lambda: str(uuid.uuid4()))
    job_id: Optional[str] = None
    replayed: bool = False  # a retry through the restart was answered with the job already made

    def submit(self) -> str:
        created = self.user.api.create(self.spec, idempotency_key=self.idempotency_key)
        self.job_id, self.replayed = created.job_id, created.idempotent_replay
        return self.job_id
