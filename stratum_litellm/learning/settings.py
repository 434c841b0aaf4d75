"""The ``learning`` settings: where labels are kept, judged samples, Open WebUI's ratings.

Part of the one settings model (:class:`stratum_litellm.config.StratumSettings` has a
``learning`` key of this type); strict like the rest: a typo or a wrong type is refused at
start with the key and the file.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class StoreSettings(_Strict):
    """The label store (SQLite). A relative path is read from the settings file's folder."""

    path: str = Field(default="stratum-labels.db", min_length=1)
    #: Keep the text of each labelled request (its last user turn) besides its features.
    #: Off: no prompt text is written anywhere.
    keep_text: bool = False
    #: Kept text is removed after this many days (the label stays).
    text_retention_days: float = Field(default=30.0, gt=0.0, le=3650.0)
    #: Decisions recorded for Open WebUI's ratings are kept this long (a rating given later
    #: finds nothing to join).
    decision_retention_days: float = Field(default=30.0, gt=0.0, le=3650.0)


class IdentitySettings(_Strict):
    """Who the judged samples' calls are charged to in LiteLLM's spend logs and logging
    payloads (its ``user_api_key_*`` metadata)."""

    key_alias: str | None = Field(default="stratum-learning", min_length=1)
    user_id: str | None = Field(default="stratum-learning", min_length=1)
    team_id: str | None = Field(default=None, min_length=1)
    end_user: str | None = Field(default=None, min_length=1)
    #: A LiteLLM virtual key (or ``os.environ/NAME``): its hash names the key charged, so
    #: the calls count against that key's spend when the gateway has a database.
    key: str | None = Field(default=None, min_length=1)


class JudgedSettings(_Strict):
    """Judged samples: the other tier answers the same conversation, a judge grades the
    first tier's answer against the stronger one's."""

    enabled: bool = False
    #: The chance that a routed request whose answer completed becomes a sample.
    share: float = Field(default=0.02, gt=0.0, le=1.0)
    #: Samples at most per clock hour and per day, across every worker and replica when
    #: the gateway has a Redis (else per process).
    per_hour: int = Field(default=30, ge=0, le=1_000_000)
    per_day: int = Field(default=300, ge=0, le=10_000_000)
    #: The tier whose answers are judged (None: the first) and the one they are judged
    #: against (None: the next local tier up).
    weak_tier: str | None = None
    strong_tier: str | None = None
    #: Who judges: a tier's name (None: the top local tier; the overflow tier spends its
    #: budget), or any model group of the gateway's model_list (a judge of its own: the
    #: router has no signals of it, so only its answers' time limits it).
    judge: str | None = Field(default=None, min_length=1)
    #: Samples in progress at once, per process; more are dropped (counted), not queued.
    max_concurrent: int = Field(default=1, ge=1, le=64)
    #: Places kept for users on the other tier and the judge's: a sample starts only when
    #: each has this many free besides the one the sample takes (tiers with a known limit).
    keep_free: int = Field(default=1, ge=0, le=64)
    #: Longest wait for each call (the other tier's answer, the judge's verdict).
    timeout_s: float = Field(default=120.0, gt=0.0, le=3600.0)
    #: The other tier's answer is cut at this many tokens.
    max_tokens: int = Field(default=512, ge=1, le=32_768)
    #: Grades (1-5) at or above this mean the first tier's answer was good enough.
    good_enough_at: int = Field(default=4, ge=2, le=5)
    #: Ask the judge for JSON ({"rating": 1-5, "reason": "..."}) through the OpenAI
    #: ``response_format`` (vLLM, llama.cpp and hosted APIs constrain their output to it).
    structured: bool = True
    identity: IdentitySettings = Field(default_factory=IdentitySettings)


class FeedbackSettings(_Strict):
    """Recording decisions for Open WebUI's ratings: requests that carry Open WebUI's
    message id (a connection header, see docs) get their decision kept in the store, so
    ``stratum labels import-openwebui`` can join each rating to it."""

    enabled: bool = False
    message_header: str = Field(default="x-openwebui-message-id", min_length=1)
    chat_header: str = Field(default="x-openwebui-chat-id", min_length=1)
    user_message_header: str = Field(default="x-openwebui-user-message-id", min_length=1)
    #: Open WebUI's own tasks (titles, tags, follow-ups) carry it; they are not answers.
    task_header: str = Field(default="x-openwebui-task", min_length=1)

    @field_validator("message_header", "chat_header", "user_message_header", "task_header")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class AgreementSettings(_Strict):
    """How well the profile in use ranks the newest labels (``stratum_profile_agreement_auroc``)."""

    #: The newest labels (judged samples and users' ratings) it is measured on.
    window: int = Field(default=500, ge=10, le=100_000)
    #: Measured only with at least this many, of both verdicts.
    min_labels: int = Field(default=50, ge=2, le=100_000)
    interval_s: float = Field(default=60.0, ge=1.0, le=86_400.0)


class LearningSettings(_Strict):
    store: StoreSettings = Field(default_factory=StoreSettings)
    judged: JudgedSettings = Field(default_factory=JudgedSettings)
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings)
    agreement: AgreementSettings = Field(default_factory=AgreementSettings)

    @property
    def active(self) -> bool:
        """Anything to do in the gateway (samples or decisions to record)."""
        return self.judged.enabled or self.feedback.enabled
