"""AttachmentController: upload a file (base64) to attach it when sending by id."""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, status

from app.compat.mailslurp import wire
from app.compat.mailslurp.deps import SlurpDep
from app.errors import InvalidInput

router = APIRouter(tags=["attachment"])

MAX_UPLOAD = 25 * 1024 * 1024


@router.post("/attachments", status_code=status.HTTP_201_CREATED)
async def upload_attachment(options: wire.UploadAttachmentOptions, slurp: SlurpDep) -> list[str]:
    """Store the file; the returned id goes into ``SendEmailOptions.attachments``."""
    try:
        data = base64.b64decode(options.base64_contents, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("base64Contents: not valid base64") from exc
    if len(data) > MAX_UPLOAD:
        raise InvalidInput(f"base64Contents: at most {MAX_UPLOAD} bytes")
    upload_id = await slurp.store.upload(
        data=data,
        filename=options.filename,
        content_type=options.content_type or "application/octet-stream",
        content_id=options.content_id,
    )
    return [upload_id]
