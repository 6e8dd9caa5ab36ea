"""An in-process stand-in for Bluesky's video service (video.bsky.app), which is not open source.

It speaks the documented wire format exactly (shared/API-NOTES.md, "Video:"), nothing more:

* ``GET /xrpc/app.bsky.video.getUploadLimits`` — Bearer service token, aud = the service's DID
  (``did:web:video.bsky.app``), lxm ``app.bsky.video.getUploadLimits`` ->
  ``{canUpload, remainingDailyVideos, remainingDailyBytes, message?, error?}``.
* ``POST /xrpc/app.bsky.video.uploadVideo?did=&name=`` — raw bytes; Bearer service token with
  aud = ``did:web:<host of the account's PDS>``, lxm ``com.atproto.repo.uploadBlob`` -> a *bare*
  JobStatus (as the real service answers; ``wrap_upload_response`` wraps it in ``{jobStatus}``).
  The same bytes again from the same DID -> HTTP 409 with a bare JobStatus
  ``{error: "already_exists", message: "Video already processed", jobId, state, blob?}``.
* ``GET /xrpc/app.bsky.video.getJobStatus?jobId=`` (no auth) ->
  ``{jobStatus: {jobId, did, state, progress?, blob?, error?, message?, failureCode?}}``, the
  state going JOB_STATE_CREATED -> JOB_STATE_ENCODING (progress) -> JOB_STATE_COMPLETED | FAILED.

Tokens are really verified: the JWT's ES256K (secp256k1) or ES256 signature is checked against
the ``#atproto`` key of the issuer's DID document, fetched from the PDS's PLC directory, plus
iss (= the ``did`` parameter for uploads), aud, lxm and exp. A bad token gets HTTP 401.
``cryptography`` is not a project dependency, so the ECDSA check is done here in plain Python
(a few milliseconds per token).

Like the real service, the fake stores the video on the account's PDS itself, with the very
token the client gave it (``com.atproto.repo.uploadBlob`` accepts user service tokens), so the
blob in a completed job exists on the real PDS and can go into a post. With ``store_on_pds=False``
(benchmarks) the body is only counted and hashed and the job completes with a made-up blob.

    async with FakeVideoService(plc_url=pds.plc_url) as fake:
        await bsky.upload_video(video, video_host=fake.url, video_service_did=fake.service_did)
        fake.uploads[0].size, fake.uploads[0].chunks
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11
import httpx

__all__ = ["FAILURE_CODES", "FakeVideoService", "TokenRejected", "Upload", "verify_service_token"]

FAILURE_CODES = ("validation_failure", "encoding_failure", "pds_upload_failure",
                 "pds_upload_unsupported_blob_size", "generic_failure")
READ_SIZE = 64 * 1024


class TokenRejected(Exception):
    """A service token failed verification (the fake answers 401)."""


@dataclass
class Upload:
    """One uploadVideo request as the fake received it."""

    did: str
    name: str
    content_type: str
    size: int
    chunks: int
    sha256: str
    job_id: str
    already_exists: bool = False


@dataclass
class Job:
    job_id: str
    did: str
    sha256: str
    state: str = "JOB_STATE_CREATED"
    progress: int | None = None
    blob: dict[str, Any] | None = None
    error: str | None = None
    message: str | None = None
    failure_code: str | None = None
    data: bytes | None = field(default=None, repr=False)
    content_type: str = "video/mp4"
    token: str = field(default="", repr=False)

    def status(self, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"jobId": self.job_id, "did": self.did, "state": self.state}
        for key, value in (("progress", self.progress), ("blob", self.blob), ("error", self.error),
                           ("message", self.message), ("failureCode", self.failure_code)):
            if value is not None:
                out[key] = value
        out.update(extra)
        return out


class FakeVideoService:
    """The fake service; every behaviour switch is a plain attribute a test may change at any time.

    Args:
        plc_url: the PLC directory that resolves the accounts' DIDs (``pds.plc_url``).
        service_did: the DID getUploadLimits tokens must be addressed to.
        store_on_pds: upload finished videos to the account's PDS (else: count and hash only).
        step_delay: seconds between job state changes.
    """

    def __init__(self, *, plc_url: str, service_did: str = "did:web:video.bsky.app", store_on_pds: bool = True,
                 step_delay: float = 0.02) -> None:
        self.plc_url = plc_url.rstrip("/")
        self.service_did = service_did
        self.store_on_pds = store_on_pds
        self.step_delay = step_delay
        # behaviour switches
        self.can_upload = True
        self.limits_message: str | None = None
        self.limits_error: str | None = None
        self.remaining_daily_bytes = 10_000_000_000
        self.remaining_daily_videos = 25
        self.failure_code: str | None = None
        self.never_finish = False
        self.instant = False
        self.wrap_upload_response = False
        self.already_exists_status = 409
        self.already_exists_with_blob = True
        # what happened
        self.uploads: list[Upload] = []
        self.jobs: dict[str, Job] = {}
        self.rejected_tokens: list[str] = []
        self.aborted_uploads = 0
        self.requests: list[str] = []
        self.url = ""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self._did_docs: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> FakeVideoService:
        self._http = httpx.AsyncClient(timeout=30)
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        if self._http is not None:
            await self._http.aclose()

    async def __aenter__(self) -> FakeVideoService:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # -- HTTP ----------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = await _next_event(conn, reader)
                if not isinstance(event, h11.Request):
                    break
                body = _body(conn, reader)
                try:
                    status, payload = await self._dispatch(event, body)
                except TokenRejected as exc:
                    status, payload = 401, {"error": "AuthenticationRequired", "message": str(exc)}
                async for _ in body:  # drain what the handler did not read
                    pass
                data = json.dumps(payload).encode()
                headers = [("content-type", "application/json; charset=utf-8"), ("content-length", str(len(data)))]
                writer.write(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
                writer.write(conn.send(h11.Data(data=data)) or b"")
                writer.write(conn.send(h11.EndOfMessage()) or b"")
                await writer.drain()
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _dispatch(self, request: h11.Request, body: AsyncIterator[bytes]) -> tuple[int, dict[str, Any]]:
        target = urlsplit(request.target.decode())
        query = {k: v[0] for k, v in parse_qs(target.query).items()}
        headers = {k.decode().lower(): v.decode() for k, v in request.headers}
        nsid = target.path.removeprefix("/xrpc/")
        self.requests.append(nsid)
        method = request.method.decode()
        if method == "GET" and nsid == "app.bsky.video.getUploadLimits":
            await self._verify(headers, aud=self.service_did, lxm=nsid)
            return 200, self._limits()
        if method == "POST" and nsid == "app.bsky.video.uploadVideo":
            return await self._upload(query, headers, body)
        if method == "GET" and nsid == "app.bsky.video.getJobStatus":
            job = self.jobs.get(query.get("jobId", ""))
            if job is None:
                return 404, {"error": "NotFound", "message": "job not found"}
            return 200, {"jobStatus": job.status()}
        return 501, {"error": "MethodNotImplemented", "message": f"{method} {nsid} is not implemented"}

    def _limits(self) -> dict[str, Any]:
        limits: dict[str, Any] = {"canUpload": self.can_upload, "remainingDailyVideos": self.remaining_daily_videos,
                                  "remainingDailyBytes": self.remaining_daily_bytes}
        if self.limits_message:
            limits["message"] = self.limits_message
        if self.limits_error:
            limits["error"] = self.limits_error
        return limits

    async def _upload(self, query: dict[str, str], headers: dict[str, str],
                      body: AsyncIterator[bytes]) -> tuple[int, dict[str, Any]]:
        did = query.get("did", "")
        if not did or not query.get("name"):
            return 400, {"error": "InvalidRequest", "message": "did and name are required"}
        pds_host = urlsplit(await self._pds_endpoint(did)).hostname
        token = await self._verify(headers, aud=f"did:web:{pds_host}", lxm="com.atproto.repo.uploadBlob", iss=did)
        digest, size, chunks, kept = hashlib.sha256(), 0, 0, bytearray()
        try:
            async for chunk in body:
                digest.update(chunk)
                size += len(chunk)
                chunks += 1
                if self.store_on_pds:
                    kept += chunk
        except h11.ProtocolError:
            self.aborted_uploads += 1
            raise
        sha = digest.hexdigest()
        existing = next((j for j in self.jobs.values() if j.did == did and j.sha256 == sha
                         and j.state != "JOB_STATE_FAILED"), None)
        job = existing or Job(f"fakejob{next(self._ids):04d}", did, sha, content_type=headers.get("content-type", ""),
                              data=bytes(kept) if self.store_on_pds else None, token=token)
        self.uploads.append(Upload(did, query["name"], headers.get("content-type", ""), size, chunks, sha, job.job_id,
                                   already_exists=existing is not None))
        if existing is not None:
            status = existing.status(error="already_exists", message="Video already processed")
            if not self.already_exists_with_blob:
                status.pop("blob", None)
            return self.already_exists_status, status
        self.jobs[job.job_id] = job
        if self.instant and not self.store_on_pds:
            self._complete(job, {"$type": "blob", "ref": {"$link": _fake_cid(sha)}, "mimeType": "video/mp4",
                                 "size": size})
        else:
            task = asyncio.get_running_loop().create_task(self._process(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        status = job.status()
        return 200, {"jobStatus": status} if self.wrap_upload_response else status

    async def _process(self, job: Job) -> None:
        await asyncio.sleep(self.step_delay)
        job.state, job.progress = "JOB_STATE_ENCODING", 0
        for progress in (10, 35, 60, 85, 100):
            await asyncio.sleep(self.step_delay)
            if self.never_finish:
                job.progress = 42
                await asyncio.Event().wait()
            job.progress = progress
            if self.failure_code and progress >= 60 and self.failure_code != "pds_upload_failure":
                return self._fail(job, self.failure_code, f"fake {self.failure_code}")
        if self.failure_code:
            return self._fail(job, self.failure_code, f"fake {self.failure_code}")
        if not self.store_on_pds:
            return self._complete(job, {"$type": "blob", "ref": {"$link": _fake_cid(job.sha256)},
                                        "mimeType": "video/mp4", "size": 0})
        assert self._http is not None and job.data is not None
        pds = await self._pds_endpoint(job.did)
        response = await self._http.post(f"{pds}/xrpc/com.atproto.repo.uploadBlob", content=job.data,
                                         headers={"Authorization": f"Bearer {job.token}", "Content-Type": "video/mp4"})
        if response.status_code != 200:
            return self._fail(job, "pds_upload_failure", f"the PDS answered {response.status_code}: {response.text}")
        self._complete(job, response.json()["blob"])

    def _complete(self, job: Job, blob: dict[str, Any]) -> None:
        job.state, job.progress, job.blob, job.data = "JOB_STATE_COMPLETED", 100, blob, None

    def _fail(self, job: Job, code: str, message: str) -> None:
        job.state, job.failure_code, job.error, job.message, job.data = "JOB_STATE_FAILED", code, code, message, None

    # -- tokens --------------------------------------------------------------------------

    async def _verify(self, headers: dict[str, str], *, aud: str, lxm: str, iss: str | None = None) -> str:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            raise TokenRejected("a service token (Authorization: Bearer) is required")
        token = auth.removeprefix("Bearer ")
        try:
            claims = _claims(token)
            issuer = str(claims.get("iss", "")).split("#")[0]
            await verify_service_token(token, await self._did_doc(issuer), aud=aud, lxm=lxm)
            if iss is not None and issuer != iss:
                raise TokenRejected(f"token issued by {issuer}, not by {iss}")
        except TokenRejected as exc:
            self.rejected_tokens.append(str(exc))
            raise
        return token

    async def _did_doc(self, did: str) -> dict[str, Any]:
        if did not in self._did_docs:
            if not did.startswith("did:plc:"):
                raise TokenRejected(f"cannot resolve issuer {did!r}")
            assert self._http is not None
            response = await self._http.get(f"{self.plc_url}/{did}")
            if response.status_code != 200:
                raise TokenRejected(f"issuer {did} does not resolve (PLC answered {response.status_code})")
            self._did_docs[did] = response.json()
        return self._did_docs[did]

    async def _pds_endpoint(self, did: str) -> str:
        try:
            doc = await self._did_doc(did)
        except TokenRejected as exc:
            raise TokenRejected(f"unknown account: {exc}") from exc
        for service in doc.get("service", []):
            if str(service.get("id", "")).endswith("#atproto_pds"):
                return str(service["serviceEndpoint"]).rstrip("/")
        raise TokenRejected(f"{did} has no PDS")


async def verify_service_token(token: str, did_doc: dict[str, Any], *, aud: str, lxm: str) -> dict[str, Any]:
    """Check an atproto service JWT against its issuer's DID document; return its claims.

    Raises:
        TokenRejected: bad shape, algorithm, signature, iss, aud, lxm or exp.
    """
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = json.loads(_b64(header_b64))
        claims = json.loads(_b64(payload_b64))
        signature = _b64(signature_b64)
    except ValueError as exc:
        raise TokenRejected(f"not a JWT: {exc}") from exc
    curve = {"ES256K": SECP256K1, "ES256": P256}.get(header.get("alg"))
    if curve is None:
        raise TokenRejected(f"unsupported alg {header.get('alg')!r}")
    if str(claims.get("iss", "")).split("#")[0] != did_doc.get("id"):
        raise TokenRejected("iss does not match the DID document")
    key = _signing_key(did_doc)
    if key[0] is not curve:
        raise TokenRejected("the token's alg does not match the issuer's key type")
    if not curve.verify(key[1], f"{header_b64}.{payload_b64}".encode(), signature):
        raise TokenRejected("bad signature")
    if claims.get("aud") != aud:
        raise TokenRejected(f"wrong aud {claims.get('aud')!r}; expected {aud!r}")
    if claims.get("lxm") != lxm:
        raise TokenRejected(f"wrong lxm {claims.get('lxm')!r}; expected {lxm!r}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= time.time():
        raise TokenRejected("token expired")
    return dict(claims)


def _claims(token: str) -> dict[str, Any]:
    try:
        claims = json.loads(_b64(token.split(".")[1]))
    except (IndexError, ValueError) as exc:
        raise TokenRejected(f"not a JWT: {exc}") from exc
    if not isinstance(claims, dict):
        raise TokenRejected("not a JWT")
    return claims


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _fake_cid(sha: str) -> str:
    """A CIDv1 (raw, sha2-256) in base32 — the shape of a real blob CID."""
    raw = bytes([0x01, 0x55, 0x12, 0x20]) + bytes.fromhex(sha)
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


# -- did:key / Multikey and ECDSA, just enough to verify atproto tokens ----------------


@dataclass(frozen=True)
class Curve:
    """A short Weierstrass curve y² = x³ + ax + b over GF(p) with generator G of order n."""

    name: str
    p: int
    a: int
    b: int
    n: int
    gx: int
    gy: int

    def point(self, data: bytes) -> tuple[int, int]:
        """A public key from SEC1 bytes: compressed (33) or uncompressed (65, 0x04 first)."""
        if len(data) == 65 and data[0] == 4:
            x, y = int.from_bytes(data[1:33], "big"), int.from_bytes(data[33:], "big")
            if (y * y - pow(x, 3, self.p) - self.a * x - self.b) % self.p:
                raise TokenRejected(f"{self.name}: the public key is not on the curve")
            return (x, y)
        if len(data) != 33 or data[0] not in (2, 3):
            raise TokenRejected(f"{self.name}: a public key is 33 or 65 bytes")
        x = int.from_bytes(data[1:], "big")
        y2 = (pow(x, 3, self.p) + self.a * x + self.b) % self.p
        y = pow(y2, (self.p + 1) // 4, self.p)
        if y * y % self.p != y2:
            raise TokenRejected(f"{self.name}: the public key is not on the curve")
        return (x, y if y % 2 == data[0] % 2 else self.p - y)

    def _add(self, p1: tuple[int, int] | None, p2: tuple[int, int] | None) -> tuple[int, int] | None:
        if p1 is None:
            return p2
        if p2 is None:
            return p1
        (x1, y1), (x2, y2) = p1, p2
        if x1 == x2 and (y1 + y2) % self.p == 0:
            return None
        if p1 == p2:
            slope = (3 * x1 * x1 + self.a) * pow(2 * y1, -1, self.p) % self.p
        else:
            slope = (y2 - y1) * pow(x2 - x1, -1, self.p) % self.p
        x3 = (slope * slope - x1 - x2) % self.p
        return (x3, (slope * (x1 - x3) - y1) % self.p)

    def _mul(self, k: int, point: tuple[int, int]) -> tuple[int, int] | None:
        result: tuple[int, int] | None = None
        addend: tuple[int, int] | None = point
        while k:
            if k & 1:
                result = self._add(result, addend)
            addend = self._add(addend, addend)
            k >>= 1
        return result

    def verify(self, public: tuple[int, int], message: bytes, signature: bytes) -> bool:
        """ECDSA/SHA-256 over a compact (r || s) signature; like atproto, only low-S is valid."""
        if len(signature) != 64:
            return False
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        if not (0 < r < self.n and 0 < s <= self.n // 2):
            return False
        z = int.from_bytes(hashlib.sha256(message).digest(), "big")
        w = pow(s, -1, self.n)
        point = self._add(self._mul(z * w % self.n, (self.gx, self.gy)), self._mul(r * w % self.n, public))
        return point is not None and point[0] % self.n == r


SECP256K1 = Curve("secp256k1", 2**256 - 2**32 - 977, 0, 7,
                  0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
                  0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
                  0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8)
P256 = Curve("P-256", 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF,
             0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFC,
             0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
             0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
             0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
             0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)
_MULTICODEC = {b"\xe7\x01": SECP256K1, b"\x80\x24": P256}
_LEGACY_TYPES = {"EcdsaSecp256k1VerificationKey2019": SECP256K1, "EcdsaSecp256r1VerificationKey2019": P256}
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _signing_key(did_doc: dict[str, Any]) -> tuple[Curve, tuple[int, int]]:
    """The ``#atproto`` verification method's curve and point.

    ``Multikey``: base58btc multibase of multicodec + compressed key. The legacy types that PLC
    still serves (``EcdsaSecp256k1VerificationKey2019``, ``EcdsaSecp256r1VerificationKey2019``):
    base58btc multibase of the bare (uncompressed) key.
    """
    for method in did_doc.get("verificationMethod", []):
        if str(method.get("id", "")).endswith("#atproto"):
            multibase = str(method.get("publicKeyMultibase", ""))
            if not multibase.startswith("z"):
                raise TokenRejected("the #atproto key is not base58btc multibase")
            raw = _b58decode(multibase[1:])
            kind = method.get("type")
            if kind == "Multikey":
                curve = _MULTICODEC.get(raw[:2])
                if curve is None:
                    raise TokenRejected(f"unknown key type (multicodec {raw[:2].hex()})")
                return curve, curve.point(raw[2:])
            curve = _LEGACY_TYPES.get(str(kind))
            if curve is None:
                raise TokenRejected(f"unknown verification method type {kind!r}")
            return curve, curve.point(raw)
    raise TokenRejected("the DID document has no #atproto signing key")


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        index = _B58.find(char)
        if index < 0:
            raise TokenRejected("bad base58 character")
        number = number * 58 + index
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\x00" * (len(text) - len(text.lstrip("1"))) + body


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await reader.read(READ_SIZE))


async def _body(conn: h11.Connection, reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """The request body as it arrives (one item per network read)."""
    while True:
        event = await _next_event(conn, reader)
        if isinstance(event, h11.Data):
            yield bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            return
        else:
            raise h11.RemoteProtocolError(f"unexpected {type(event).__name__} in a request body")
