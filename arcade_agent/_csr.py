"""A new key and CSR for the agent, made in a short-lived child process.

Making a key and a certificate signing request is the only thing the agent needs
:mod:`cryptography` for, and it happens at enrollment and at each renewal. Importing it in the
agent would keep its Rust binding and x509 modules (~9 MB) resident for the agent's whole
life, so :func:`request_csr` runs ``python -m arcade_agent._csr AGENT_ID`` instead (~0.3 s,
once per enrollment or renewal): the child writes one JSON line ``{"key": PEM, "csr": PEM}``
on its stdout pipe and exits; the key never touches the disk here (the agent stores it 0600).
"""

from __future__ import annotations

import asyncio
import json
import sys

__all__ = ["make_csr", "request_csr"]


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

    Raises :class:`RuntimeError` with the child's error output when it fails."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", __name__, agent_id, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"making a key and CSR failed (exit {proc.returncode}): "
                           f"{err.decode(errors='replace').strip()[-500:]}")
    answer = json.loads(out)
    return answer["key"].encode(), answer["csr"].encode()


def main() -> None:
    key_pem, csr_pem = make_csr(sys.argv[1])
    sys.stdout.write(json.dumps({"key": key_pem.decode(), "csr": csr_pem.decode()}) + "\n")


if __name__ == "__main__":
    main()
