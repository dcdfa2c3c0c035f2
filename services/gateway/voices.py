"""``POST /v1/voices``: clips of a client's own TTS voice in, a ``kws.enroll`` job out (202, ``voice_id``).

The body is either a multipart form (a ``manifest`` field with JSON, and one file field per clip, each
field named as its file) or a zip holding ``manifest.json`` and the clips. The manifest lists every clip:

    {"clips": [{"file": "kw01.wav", "keyword": true, "span_ms": [820, 1390]},
               {"file": "kw02.wav", "keyword": true},
               {"file": "free01.wav", "keyword": false}],
     "seed": 0}

A keyword clip without ``span_ms`` is aligned by the spotter itself on the worker. Before any job exists the
gateway checks the total size, the manifest, every clip (decoded like any upload, within the clip duration
limit) and the set's minimums and maximums (``services.common.enrollment``); each failure is a 4xx naming
the clip, and is recorded as an errors row. Adaptation runs on the kws worker, never here.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
import zipfile

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from services.common.audio import AudioLimits, AudioRejected
from services.common.enrollment import ClipFacts, EnrollmentLimits, EnrollmentRejected, check_clip_set
from services.gateway.admission import probe_duration
from services.gateway.http import _STATUS_FOR_REJECTION, GatewayHttp, authenticate, error
from services.gateway.jobs import EnrollmentClip

MANIFEST_FILE = "manifest.json"


class ManifestClip(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str = Field(min_length=1, max_length=200)
    keyword: bool
    span_ms: tuple[int, int] | None = None


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clips: list[ManifestClip] = Field(min_length=1)
    seed: int = 0


class BadEnrollment(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def add_voice_routes(app: FastAPI, gateway: GatewayHttp) -> None:
    limits = gateway.settings

    @app.post("/v1/voices", status_code=202)
    async def post_voice(request: Request) -> JSONResponse:
        """Enroll a voice: check the clips, publish the adaptation job, answer with its ``voice_id``."""
        api_key = await authenticate(gateway, request)
        if isinstance(api_key, JSONResponse):
            return api_key
        voice_id = "v_" + uuid.uuid4().hex
        try:
            manifest, files = await read_enrollment(request, limits)
            clips, free_speech_s = await asyncio.to_thread(checked_clips, manifest, files, limits)
        except BadEnrollment as bad:
            await gateway.submitter.record_rejection(
                "kws.enroll", voice_id, EnrollmentRejected(bad.code, bad.message)
            )
            return error(bad.status, bad.code, bad.message)
        await gateway.submitter.submit_enrollment(voice_id, api_key.id, clips, free_speech_s, manifest.seed)
        return JSONResponse(
            {
                "voice_id": voice_id,
                "status": "pending",
                "status_url": f"{gateway.settings.store_public_url}/v1/voices/{voice_id}",
            },
            status_code=202,
        )


async def read_enrollment(request: Request, limits: EnrollmentLimits) -> tuple[Manifest, dict[str, bytes]]:
    """The manifest and the clip bytes by file name, from a multipart form or a zip body."""
    declared = request.headers.get("content-length")
    if declared is None:
        raise BadEnrollment(411, "length_required", "An enrollment upload needs a Content-Length header.")
    if int(declared) > limits.enroll_max_total_bytes:
        raise BadEnrollment(
            413, "too_large", f"The upload is larger than {limits.enroll_max_total_bytes / 1e6:.0f} MB."
        )
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        manifest_text, files = await read_form(request, limits)
    elif content_type.startswith(("application/zip", "application/x-zip-compressed")):
        manifest_text, files = read_zip(await request.body(), limits)
    else:
        raise BadEnrollment(
            415,
            "unsupported_media_type",
            "Send multipart/form-data (a 'manifest' field and one file per clip) or application/zip "
            f"(with {MANIFEST_FILE}).",
        )
    try:
        manifest = Manifest.model_validate_json(manifest_text)
    except ValidationError as invalid:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in invalid.errors()[:5])
        raise BadEnrollment(422, "bad_manifest", f"The manifest is not valid: {problems}.") from None
    return manifest, files


async def read_form(request: Request, limits: EnrollmentLimits) -> tuple[str, dict[str, bytes]]:
    async with request.form(max_files=limits.enroll_max_clips + 1, max_fields=4) as form:
        manifest = form.get("manifest")
        if manifest is None:
            raise BadEnrollment(422, "bad_manifest", "The form has no 'manifest' field.")
        if isinstance(manifest, UploadFile):
            manifest = (await manifest.read()).decode("utf-8", errors="replace")
        files = {}
        for name, value in form.multi_items():
            if isinstance(value, UploadFile) and name != "manifest":
                files[value.filename or name] = await value.read()
    return manifest, files


def read_zip(body: bytes, limits: EnrollmentLimits) -> tuple[str, dict[str, bytes]]:
    """The zip's members; the uncompressed total is bounded too, so a zip bomb is refused unread."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
        members = [info for info in archive.infolist() if not info.is_dir()]
        if sum(info.file_size for info in members) > limits.enroll_max_total_bytes:
            raise BadEnrollment(413, "too_large", "The zip's contents exceed the upload limit.")
        files = {info.filename.rsplit("/", 1)[-1]: archive.read(info) for info in members}
    except (zipfile.BadZipFile, EOFError):
        raise BadEnrollment(422, "bad_zip", "The body is not a readable zip archive.") from None
    if MANIFEST_FILE not in files:
        raise BadEnrollment(422, "bad_manifest", f"The zip has no {MANIFEST_FILE}.")
    return files.pop(MANIFEST_FILE).decode("utf-8", errors="replace"), files


def checked_clips(
    manifest: Manifest, files: dict[str, bytes], limits: EnrollmentLimits
) -> tuple[list[EnrollmentClip], float]:
    """Every manifest clip decoded and checked, and the set against its limits; (clips, free speech s)."""
    audio_limits = AudioLimits(
        max_bytes=limits.enroll_max_total_bytes, max_duration_s=limits.enroll_max_clip_s
    )
    clips, facts = [], []
    names = [clip.file for clip in manifest.clips]
    if len(set(names)) != len(names):
        raise BadEnrollment(422, "bad_manifest", "The manifest names a file more than once.")
    for entry in manifest.clips:
        audio = files.get(entry.file)
        if audio is None:
            raise BadEnrollment(
                422, "missing_clip", f"The manifest names {entry.file!r}, which was not sent."
            )
        try:
            duration_s = probe_duration(audio, audio_limits)
        except AudioRejected as rejected:
            status = _STATUS_FOR_REJECTION[rejected.code]
            raise BadEnrollment(
                status, f"clip_{rejected.code}", f"Clip {entry.file!r}: {rejected.message}."
            ) from None
        facts.append(ClipFacts(entry.file, entry.keyword, int(duration_s * 1000), entry.span_ms))
        clips.append(EnrollmentClip(entry.file, audio, entry.keyword, entry.span_ms))
    try:
        check_clip_set(facts, limits)
    except EnrollmentRejected as rejected:
        raise BadEnrollment(422, rejected.code, rejected.message) from None
    free_speech_s = sum(fact.duration_ms for fact in facts if not fact.keyword) / 1000
    return clips, free_speech_s


def manifest_json(clips: list[dict]) -> str:
    """A manifest for ``clips`` (used by clients and tests to build a request)."""
    return json.dumps({"clips": clips})
