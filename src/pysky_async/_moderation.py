"""Reports to a labeler (``com.atproto.moderation.createReport``) and the labelers a client accepts.

A report goes to the account's PDS with ``atproto-proxy: <labeler DID>#atproto_labeler``; the PDS
forwards it to the service that DID document names. Without the header the PDS sends it to its
own default moderation service (Bluesky's, for a Bluesky account), whatever labeler was meant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._exceptions import BadRequest, InvalidIdentifier, InvalidInput
from ._lenient import at_uri_from_text
from ._records import RecordRef
from ._syntax import AtUri, Did

if TYPE_CHECKING:
    from ._identity import IdentityResolver
    from ._records import Records
    from ._xrpc import Xrpc

CREATE_REPORT = "com.atproto.moderation.createReport"
LABELER_SERVICE = "atproto_labeler"
REPO_REF = "com.atproto.admin.defs#repoRef"
STRONG_REF = "com.atproto.repo.strongRef"
_BASE = "com.atproto.moderation.defs#reason"
_OZONE = "tools.ozone.report.defs#reason"

REASON_TYPES: tuple[str, ...] = (
    *(f"{_BASE}{name}" for name in ("Spam", "Violation", "Misleading", "Sexual", "Rude", "Other", "Appeal")),
    *(f"{_OZONE}{name}" for name in (
        "Appeal", "Other",
        "ViolenceAnimal", "ViolenceThreats", "ViolenceGraphicContent", "ViolenceGlorification",
        "ViolenceExtremistContent", "ViolenceTrafficking", "ViolenceOther",
        "SexualAbuseContent", "SexualNCII", "SexualDeepfake", "SexualAnimal", "SexualUnlabeled", "SexualOther",
        "ChildSafetyCSAM", "ChildSafetyGroom", "ChildSafetyPrivacy", "ChildSafetyHarassment", "ChildSafetyOther",
        "HarassmentTroll", "HarassmentTargeted", "HarassmentHateSpeech", "HarassmentDoxxing", "HarassmentOther",
        "MisleadingBot", "MisleadingImpersonation", "MisleadingSpam", "MisleadingScam", "MisleadingElections",
        "MisleadingOther",
        "RuleSiteSecurity", "RuleProhibitedSales", "RuleBanEvasion", "RuleOther",
        "SelfHarmContent", "SelfHarmED", "SelfHarmStunts", "SelfHarmSubstances", "SelfHarmOther")),
)
"""The known values of ``com.atproto.moderation.defs#reasonType`` (the lexicon's ``knownValues``)."""

SHORT_REASONS: dict[str, str] = {name.lower(): f"{_BASE}{name}" for name in
                                 ("Spam", "Violation", "Misleading", "Sexual", "Rude", "Other", "Appeal")}
"""``reason_type="spam"`` and the like: the ``com.atproto.moderation.defs`` reasons by their short names."""

SELF_LABELS = "com.atproto.label.defs#selfLabels"
POST_SELF_LABELS: tuple[str, ...] = ("porn", "sexual", "nudity", "graphic-media")
"""The self-labels a post can carry: the adult-content and graphic-media values of
``com.atproto.label.defs#labelValue`` that the Bluesky app offers and the AppView applies to posts."""
MAX_SELF_LABELS = 10
MAX_LABEL_VALUE_CHARS = 128


def self_labels(values: Iterable[str]) -> dict[str, Any]:
    """The ``labels`` field of a record for these self-label values (``#selfLabels``), checked:
    known post values, no repeats, at most 10 (the lexicon's limit).

    Raises:
        InvalidPost: an unknown or repeated value, or too many.
    """
    from ._exceptions import InvalidPost

    values = list(values)
    if len(values) > MAX_SELF_LABELS:
        raise InvalidPost(f"a record carries at most {MAX_SELF_LABELS} self-labels, got {len(values)}")
    for value in values:
        if not isinstance(value, str) or value not in POST_SELF_LABELS:
            raise InvalidPost(f"Post(labels=...): {value!r} is not a self-label a post can carry; use "
                              f"{', '.join(map(repr, POST_SELF_LABELS))} (labelers put other labels on posts)")
    if len(set(values)) != len(values):
        raise InvalidPost(f"Post(labels=...): a value is repeated in {values!r}")
    return {"$type": SELF_LABELS, "values": [{"val": value} for value in values]}


MAX_REASON_CHARS = 20_000
MAX_REASON_GRAPHEMES = 2_000


def check_reason_type(value: str) -> str:
    """The full reason type for ``value`` (a known value, or a short name such as ``"spam"``)."""
    if value in REASON_TYPES:
        return value
    full = SHORT_REASONS.get(value.lower().removeprefix("reason"))
    if full is None:
        raise InvalidInput(f"reason_type={value!r} is not a known com.atproto.moderation.defs#reasonType: use one "
                           f"of {', '.join(sorted(SHORT_REASONS))} or a full value such as "
                           f"'{_BASE}Spam' or '{_OZONE}HarassmentTroll' (pysky_async.REASON_TYPES lists them)")
    return full


def labeler_proxy(labeler: str) -> str:
    """The ``atproto-proxy`` value for a labeler: ``<did>#atproto_labeler`` (a DID or ``did#service``)."""
    did, _, service = labeler.partition("#")
    try:
        Did(did)
    except InvalidIdentifier as exc:
        raise InvalidInput(f"labeler={labeler!r} is not a labeler's DID ({exc}); pass its DID, e.g. "
                           "'did:plc:ar7c4by46qjdydhdevvrndac' (Bluesky's moderation service)") from None
    return f"{did}#{service or LABELER_SERVICE}"


@dataclass(frozen=True)
class Report:
    """A report the moderation service took: its ``id`` there and what it recorded."""

    id: int
    reason_type: str
    subject: dict[str, Any]
    reported_by: str
    created_at: str
    reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


class Moderation:
    """Reports (``bsky.moderation``): ``await bsky.moderation.create_report(subject, ...)``.

    Args:
        xrpc: how calls are made. records: to fetch a reported record's CID. identity: handles.
    """

    def __init__(self, xrpc: Xrpc, records: Records, identity: IdentityResolver) -> None:
        self._xrpc = xrpc
        self._records = records
        self._identity = identity

    async def labeler_url(self, labeler: str) -> str:
        """The URL of a labeler's service (the ``#atproto_labeler`` endpoint of its DID document), where
        ``bsky.streams.labels(handler, service=...)`` subscribes.

        Raises:
            IdentityNotFound: the DID does not resolve, or its document names no labeler service.
        """
        from ._exceptions import IdentityNotFound

        did = labeler_proxy(labeler).split("#", 1)[0]
        for service in (await self._identity.resolve_did(did)).get("service") or []:
            if (isinstance(service, dict) and str(service.get("id", "")).endswith(f"#{LABELER_SERVICE}")
                    and isinstance(service.get("serviceEndpoint"), str)):
                return str(service["serviceEndpoint"]).rstrip("/")
        raise IdentityNotFound(f"the DID document of {did} names no #atproto_labeler service: it is not a labeler",
                               identifier=did, reason="no_labeler")

    async def subject(self, subject: str | AtUri | RecordRef) -> dict[str, Any]:
        """The report subject for ``subject``: a strongRef for a record (its current CID fetched),
        a repoRef for an account (a DID, a handle or an ``at://`` URI without a record)."""
        if isinstance(subject, RecordRef):
            return {"$type": STRONG_REF, "uri": subject.uri, "cid": subject.cid}
        if isinstance(subject, str) and subject.startswith("did:"):
            return {"$type": REPO_REF, "did": str(Did(subject))}
        if isinstance(subject, str) and not subject.startswith(("at://", "https://", "http://")):
            return {"$type": REPO_REF, "did": await self._identity.resolve_handle(subject.removeprefix("@"))}
        at = at_uri_from_text(subject)
        if not at.has_did:
            at = AtUri(await self._identity.resolve_handle(at.authority), at.collection, at.rkey)
        if at.collection is None or at.rkey is None:
            return {"$type": REPO_REF, "did": at.authority}
        record = await self._records.get(at)
        return {"$type": STRONG_REF, "uri": record.ref.uri, "cid": record.ref.cid}

    async def create_report(self, subject: str | AtUri | RecordRef, *, reason_type: str, labeler: str | None,
                            reason: str | None = None) -> Report:
        """Report ``subject`` to the moderation service ``labeler`` (its DID).

        Args:
            subject: a post or other record (an ``at://`` URI, a bsky.app link or a ``RecordRef``: sent
                as a strongRef with the record's current CID), or an account (a DID or handle: a repoRef).
            reason_type: a ``com.atproto.moderation.defs#reasonType`` value, or its short name
                (``"spam"``, ``"violation"``, ``"misleading"``, ``"sexual"``, ``"rude"``, ``"other"``,
                ``"appeal"``); checked against the lexicon's known values before any request.
            labeler: the DID of the labeler that gets the report, sent as ``atproto-proxy:
                <did>#atproto_labeler``. ``None`` sends no header: the PDS then forwards the report,
                silently, to its own default moderation service (Bluesky's, for a Bluesky account) and
                no other labeler ever sees it; so it must be chosen explicitly.
            reason: free text for the moderators (at most 2,000 graphemes).
        """
        full_type = check_reason_type(reason_type)
        if reason is not None:
            from ._graphemes import grapheme_count

            if len(reason) > MAX_REASON_CHARS or grapheme_count(reason) > MAX_REASON_GRAPHEMES:
                raise InvalidInput(f"a report's reason is at most {MAX_REASON_GRAPHEMES} graphemes "
                                   f"({MAX_REASON_CHARS} characters); this one is longer: shorten it")
        proxy = labeler_proxy(labeler) if labeler is not None else None
        body: dict[str, Any] = {"reasonType": full_type, "subject": await self.subject(subject)}
        if reason is not None:
            body["reason"] = reason
        request = self._xrpc.request("POST", CREATE_REPORT, default_auth=True).replace(json=body)
        if proxy is not None:
            request = request.with_headers({"atproto-proxy": proxy})
        try:
            response = await self._xrpc.send(request)
        except BadRequest as exc:
            if proxy is None or "proxy did" not in (exc.message or ""):
                raise
            raise type(exc)(exc.status_code, exc.error,
                            f"{exc.message}: the PDS found no #atproto_labeler service in the DID document of "
                            f"{labeler}, so it is not a labeler; pass the labeler's DID (the account whose "
                            "app.bsky.labeler.service record describes it)", endpoint=exc.endpoint,
                            response=exc.response, log_id=exc.log_id) from exc
        [report_id] = response.require("id")
        data = response.raw
        return Report(id=int(report_id), reason_type=str(data.get("reasonType", full_type)),
                      subject=dict(data.get("subject") or body["subject"]),
                      reported_by=str(data.get("reportedBy", "")), created_at=str(data.get("createdAt", "")),
                      reason=data.get("reason"), raw=dict(data))
