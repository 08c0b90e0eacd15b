"""MailSlurp wire models: request bodies and responses with MailSlurp's camelCase names.

Field names, required fields and enum values follow the official SDK
``mailslurp-client`` 17.6.0 (its models validate every response client-side):
required fields are never null here, enums only take listed values, and times
are UTC with milliseconds and ``Z`` (``2026-11-28T17:05:29.123Z``). Request
models ignore unknown keys (the SDK sends many options we do not use).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

T = TypeVar("T")


def format_ms(value: datetime) -> str:
    """UTC, millisecond precision, ``Z``: what MailSlurp sends and dateutil parses aware."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


Time = Annotated[datetime, PlainSerializer(format_ms, return_type=str)]


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class WireIn(Wire):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


# -- requests ----------------------------------------------------------------------


class CreateInboxDto(WireIn):
    email_address: str | None = None
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    tags: list[str] = Field(default_factory=list, max_length=50)
    expires_at: datetime | None = None
    expires_in: int | None = Field(default=None, gt=0, description="Milliseconds.")
    favourite: bool | None = None
    inbox_type: Literal["HTTP_INBOX", "SMTP_INBOX"] | None = None
    prefix: str | None = None


class SendEmailOptions(WireIn):
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    from_: str | None = Field(default=None, alias="from")
    subject: str | None = None
    reply_to: str | None = None
    custom_headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    is_html: bool | None = Field(default=None, alias="isHTML")
    html: bool | None = None
    charset: str | None = None
    attachments: list[str] = Field(default_factory=list)


class ReplyToEmailOptions(WireIn):
    body: str = ""
    is_html: bool = Field(default=False, alias="isHTML")
    html: bool | None = None
    reply_to: str | None = None
    custom_headers: dict[str, str] = Field(default_factory=dict)
    attachments: list[str] = Field(default_factory=list)


class ForwardEmailOptions(WireIn):
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    subject: str | None = None


MatchField = Literal["SUBJECT", "TO", "BCC", "CC", "FROM", "HEADERS"]
MatchShould = Literal["MATCH", "CONTAIN", "EQUAL"]


class MatchOption(WireIn):
    field: MatchField
    should: MatchShould
    value: str = Field(min_length=1, max_length=1000)


class ConditionOption(WireIn):
    condition: Literal["HAS_ATTACHMENTS"]
    value: Literal["TRUE", "FALSE"]


class MatchOptions(WireIn):
    matches: list[MatchOption] = Field(default_factory=list, max_length=50)
    conditions: list[ConditionOption] = Field(default_factory=list, max_length=10)


class WaitForConditions(WireIn):
    inbox_id: str
    timeout: int = Field(ge=0, description="Milliseconds.")
    count: int = Field(default=1, ge=1, le=100)
    count_type: Literal["EXACTLY", "ATLEAST"] = "EXACTLY"
    matches: list[MatchOption] = Field(default_factory=list, max_length=50)
    sort_direction: Literal["ASC", "DESC"] = "ASC"
    since: datetime | None = None
    before: datetime | None = None
    unread_only: bool = False


class UploadAttachmentOptions(WireIn):
    base64_contents: str
    content_type: str | None = Field(default=None, max_length=255)
    filename: str | None = Field(default=None, max_length=255)
    content_id: str | None = Field(default=None, max_length=255)


class ContentMatchOptions(WireIn):
    pattern: str = Field(min_length=1, max_length=1000)


class ExtractCodesOptions(WireIn):
    min_length: int | None = Field(default=None, ge=1)
    max_length: int | None = Field(default=None, ge=1)
    max_candidates: int | None = Field(default=None, ge=1)
    custom_patterns: list[str] = Field(default_factory=list, max_length=20)


class BasicAuthOptions(WireIn):
    username: str
    password: str


class WebhookHeaderNameValue(WireIn):
    name: str
    value: str


class WebhookHeaders(WireIn):
    headers: list[WebhookHeaderNameValue] = Field(default_factory=list)


class CreateWebhookOptions(WireIn):
    url: str = Field(min_length=1, max_length=2000)
    name: str | None = Field(default=None, max_length=200)
    event_name: str | None = None
    basic_auth: BasicAuthOptions | None = None
    include_headers: WebhookHeaders | None = None


# -- responses ---------------------------------------------------------------------


class InboxDto(Wire):
    id: str
    user_id: str
    created_at: Time
    name: str | None
    description: str | None
    email_address: str
    expires_at: Time | None
    favourite: bool
    tags: list[str]
    inbox_type: Literal["HTTP_INBOX", "SMTP_INBOX"]
    read_only: bool = False
    virtual_inbox: bool = False
    functions_as: None = None
    local_part: str
    domain: str


class InboxPreview(Wire):
    id: str
    user_id: str
    email_address: str
    created_at: Time
    favourite: bool
    name: str | None
    description: str | None
    tags: list[str]
    team_access: bool = True
    inbox_type: Literal["HTTP_INBOX", "SMTP_INBOX"]
    virtual_inbox: bool = False
    expires_at: Time | None


class Sender(Wire):
    raw_value: str
    email_address: str
    name: str | None


class EmailRecipients(Wire):
    to: list[Sender]
    cc: list[Sender]
    bcc: list[Sender]


class EmailPreview(Wire):
    id: str
    inbox_id: str
    subject: str | None
    to: list[str]
    from_: str | None = Field(alias="from")
    cc: list[str]
    bcc: list[str]
    created_at: Time
    read: bool
    attachments: list[str]
    message_id: str | None
    sender: Sender | None
    recipients: EmailRecipients
    size_bytes: int


class EmailProjection(EmailPreview):
    team_access: bool = True
    body_excerpt: str | None
    text_excerpt: str | None


class Email(EmailProjection):
    user_id: str
    updated_at: Time
    reply_to: str | None
    headers: dict[str, str]
    headers_map: dict[str, list[str]]
    body: str | None
    is_html: bool = Field(alias="isHTML")
    html: bool
    charset: str | None
    in_reply_to: str | None
    thread_id: str | None
    body_md5_hash: str | None = Field(alias="bodyMD5Hash")
    body_part_content_types: list[str]
    favourite: bool = False


class SortObject(Wire):
    sorted: bool
    unsorted: bool
    empty: bool


class Pageable(Wire):
    page_number: int
    page_size: int
    offset: int
    paged: bool = True
    unpaged: bool = False
    sort: SortObject


class Page(Wire, Generic[T]):
    """Spring Data's ``Page`` shape."""

    content: list[T]
    pageable: Pageable
    total_pages: int
    total_elements: int
    last: bool
    first: bool
    size: int
    number: int
    sort: SortObject
    number_of_elements: int
    empty: bool


def page_of(items: list[T], *, page: int, size: int, total: int) -> Page[T]:
    sort = SortObject(sorted=True, unsorted=False, empty=False)
    pages = (total + size - 1) // size if size else 0
    return Page[T](
        content=items,
        pageable=Pageable(page_number=page, page_size=size, offset=page * size, sort=sort),
        total_pages=pages,
        total_elements=total,
        last=page >= pages - 1,
        first=page == 0,
        size=size,
        number=page,
        sort=sort,
        number_of_elements=len(items),
        empty=not items,
    )


class CountDto(Wire):
    total_elements: int


class UnreadCount(Wire):
    count: int


class SentEmailDto(Wire):
    id: str
    user_id: str
    inbox_id: str
    to: list[str]
    from_: str | None = Field(alias="from")
    cc: list[str]
    bcc: list[str]
    reply_to: str | None
    subject: str | None
    body: str | None
    is_html: bool = Field(alias="isHTML")
    attachments: list[str]
    sent_at: Time
    created_at: Time
    message_id: str | None
    message_ids: list[str]
    virtual_send: bool = False
    transport: Literal["PUBLIC_EMAIL", "SANDBOX_LOCAL"]
    size_bytes: int


class SentEmailProjection(Wire):
    id: str
    user_id: str
    inbox_id: str
    subject: str | None
    from_: str | None = Field(alias="from")
    to: list[str]
    cc: list[str]
    bcc: list[str]
    attachments: list[str]
    created_at: Time
    message_id: str | None
    virtual_send: bool = False


class DeliveryStatusDto(Wire):
    id: str
    user_id: str
    sent_id: str
    inbox_id: str | None
    recipients: list[str]
    subject: str | None
    smtp_status_code: int | None
    smtp_response: str | None
    remote_mta_ip: str | None
    reporting_mta: str | None
    processing_time_millis: int | None
    received: Time | None
    created_at: Time
    updated_at: Time


class AttachmentMetaData(Wire):
    id: str
    name: str
    content_type: str
    content_length: int
    content_id: str | None


class DownloadAttachmentDto(Wire):
    base64_file_contents: str
    content_type: str
    size_bytes: int


class RawEmailJson(Wire):
    content: str


class EmailHtmlDto(Wire):
    subject: str | None
    body: str | None


class EmailLinksResult(Wire):
    links: list[str]
    body: str


class EmailContentMatchResult(Wire):
    pattern: str
    matches: list[str]


class EmailTextLinesResult(Wire):
    lines: list[str]
    body: str


class CodeCandidate(Wire):
    code: str
    confidence: float
    method: Literal["PATTERN"] = "PATTERN"
    source: str
    context: str | None


class ExtractCodesResult(Wire):
    found: bool
    code: str | None
    method_used: Literal["PATTERN"] | None
    candidates: list[CodeCandidate]
    warnings: list[str]


class WebhookDto(Wire):
    id: str
    user_id: str
    inbox_id: str | None
    name: str | None
    url: str
    method: Literal["POST"] = "POST"
    basic_auth: bool
    event_name: str | None
    payload_json_schema: str
    request_headers: dict[str, Any] | None
    created_at: Time
    updated_at: Time
    enabled: bool = True
    health_status: Literal["HEALTHY", "UNHEALTHY"] | None = None


class WebhookProjection(Wire):
    id: str
    user_id: str
    inbox_id: str | None
    name: str | None
    url: str
    event_name: str | None
    enabled: bool = True
    created_at: Time
    updated_at: Time
