"""The worker process side of ``CommitVerifier(processes=N)``: prove commits, answer verdicts.

``python -m pysky_async._sync.proof_worker`` reads batches of jobs on stdin and writes a batch
of verdicts per batch on stdout, in order. A frame is a 4-byte big-endian length and a pickle:
both ends are this library, started by the verifier, so nothing from the network is unpickled
(the CAR slice travels as ``bytes`` inside). ``prove_job`` is the same proof as on the event
loop (``prove_commit`` or ``load_commit``, then the signature with the repo's key).
"""

from __future__ import annotations

import pickle
import struct
import sys
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.asymmetric import ec

from .._exceptions import VerificationError
from .commit import CommitOp, load_commit, prove_commit
from .crypto import CheckSignature, signature_checker

Job = tuple[str, bytes, "bytes | None", tuple[tuple[str, str, "bytes | None", "bytes | None"], ...], str, str,
            "str | None", "bytes | None", tuple[str, bytes]]
"""``(verify, car, commit_cid, ops, did, rev, since, prev_data, (curve, compressed point))``."""
Verdict = tuple[str, Any, Any]
"""``("ok", rev, data)``, ``("signature", rev, data)`` (proven, but not signed by that key),
``("failed", reason, message)`` (a ``VerificationError``) or ``("malformed", repr, None)``."""

_CURVES: dict[str, ec.EllipticCurve] = {"secp256k1": ec.SECP256K1(), "secp256r1": ec.SECP256R1()}
_HEADER = struct.Struct(">I")
READY = "ready"
"""The first frame a worker writes: it has imported what it needs and reads jobs."""


def key_spec(key: ec.EllipticCurvePublicKey) -> tuple[str, bytes]:
    """What a worker needs to check signatures by ``key``: its curve and compressed point."""
    from cryptography.hazmat.primitives import serialization

    return key.curve.name, key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)


def prove_job(job: Job, checkers: dict[tuple[str, bytes], CheckSignature]) -> Verdict:
    """Prove one commit as ``CommitVerifier`` does on the loop; ``checkers`` caches keys by spec."""
    verify, car, commit_cid, ops, did, rev, since, prev_data, spec = job
    try:
        if verify == "signature":
            proven, _nodes = load_commit(car, commit_cid, did=did, rev=rev)
        else:
            proven = prove_commit(car, commit_cid, [CommitOp(*op) for op in ops], did=did, rev=rev, since=since,
                                  prev_data=prev_data, inductive=verify == "inductive")
        check = checkers.get(spec)
        if check is None:
            curve, point = spec
            check = checkers[spec] = signature_checker(ec.EllipticCurvePublicKey.from_encoded_point(
                _CURVES[curve], point))
        return ("ok" if check(proven.unsigned, proven.sig) else "signature", proven.rev, proven.data)
    except VerificationError as exc:
        return ("failed", exc.reason, str(exc))
    except (KeyError, TypeError, ValueError) as exc:
        return ("malformed", repr(exc), None)


def encode(batch: Any) -> bytes:
    """One frame: the length, then the pickle."""
    body = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Answer every batch of jobs on ``stdin`` until it closes."""
    checkers: dict[tuple[str, bytes], CheckSignature] = {}
    stdout.write(encode(READY))
    stdout.flush()
    while True:
        header = stdin.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return
        (size,) = _HEADER.unpack(header)
        jobs: list[Job] = pickle.loads(stdin.read(size))
        stdout.write(encode([prove_job(job, checkers) for job in jobs]))
        stdout.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
