"""A new key and CSR for the agent, made in a short-lived child process.

Making a key and a certificate signing request is the only thing the agent needs
:mod:`cryptography` for, and it happens at enrollment and at each renewal. Importing it in the
agent would keep its Rust binding and x509 modules (~12 MB) resident for the agent's whole
life, so :func:`request_csr` runs ``python -P -m arcade_agent._csr AGENT_ID`` instead (a Python
start and the import: 0.5-2 s by load, once per enrollment or renewal): the child writes one
JSON line ``{"key": PEM, "csr": PEM}`` on its stdout pipe and exits; the key never touches the
disk here (the agent stores it 0600).
"""

from __future__ import annotations

import asyncio
import json
import sys

from .errors import AgentError

__all__ = ["CsrError", "make_csr", "request_csr"]


class CsrError(AgentError):
    """The child that makes the key and CSR could not run or failed (the message says why)."""


def make_csr(agent_id: str) -> tuple[bytes, bytes]:
    """A new P-256 key and a CSR for ``agent_id``: (key PEM, CSR PEM). In this process."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, agent_id)]))
           .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, csr.public_bytes(serialization.Encoding.PEM)


async def request_csr(agent_id: str, timeout: float = 60.0) -> tuple[bytes, bytes]:
    """:func:`make_csr` in a child process (this interpreter): (key PEM, CSR PEM).

    Raises :class:`CsrError` with the child's error output when it cannot run or fails."""
    try:
        proc = await asyncio.create_subprocess_exec(
            # -P: the agent's working directory never shadows the installed package
            sys.executable, "-P", "-m", __name__, agent_id, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise CsrError(f"cannot start {sys.executable} to make a key and CSR: {exc}") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if proc.returncode != 0:
        raise CsrError(f"making a key and CSR failed (exit {proc.returncode}): "
                       f"{err.decode(errors='replace').strip()[-500:]}")
    answer = json.loads(out)
    return answer["key"].encode(), answer["csr"].encode()


def main() -> int:
    """The child: one JSON line on stdout, or one line saying what failed on stderr."""
    try:
        key_pem, csr_pem = make_csr(sys.argv[1])
    except Exception as exc:  # one clear line for the agent's error message
        sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
        return 1
    sys.stdout.write(json.dumps({"key": key_pem.decode(), "csr": csr_pem.decode()}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
