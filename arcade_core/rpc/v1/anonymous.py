"""The well-known *anonymous* client certificate, presented only to call ``Enroll``.

Why it exists: gRPC Python can either require a verified client certificate or not ask for one
at all (``ssl_server_credentials(require_client_auth=False)`` does not request it, so a server
could never see an agent's certificate). The server therefore requires a client certificate
on every connection and trusts, besides its CA, this one self-signed certificate. Its private
key is public — it is right here — so it proves nothing about the caller: the server treats a
connection presenting it as anonymous, answers ``Enroll`` on it (authorised by the enrollment
token) and refuses everything else with ``UNAUTHENTICATED``. It is not a CA (basic
constraints ``CA:FALSE``), so nothing signed with its key is accepted.
"""

from __future__ import annotations

__all__ = ["ANONYMOUS_CERT_PEM", "ANONYMOUS_KEY_PEM"]

ANONYMOUS_CERT_PEM = b"""\
-----BEGIN CERTIFICATE-----
MIIBcjCCARigAwIBAgIBATAKBggqhkjOPQQDAjAmMSQwIgYDVQQDDBthcmNhZGUt
ZW5yb2xsbWVudC1hbm9ueW1vdXMwIBcNMjUwMTAxMDAwMDAwWhgPMjEyNTAxMDEw
MDAwMDBaMCYxJDAiBgNVBAMMG2FyY2FkZS1lbnJvbGxtZW50LWFub255bW91czBZ
MBMGByqGSM49AgEGCCqGSM49AwEHA0IABIAJNrKDtjiKwCy8bxo+Jb1+dpW3Wnqv
VlAUWuAaoWs8AzVCeK6Fr/wKRN/r3pOczSX0kwH66+C+frNAjZWFBFajNTAzMAwG
A1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMC
MAoGCCqGSM49BAMCA0gAMEUCIQCo8bIuI1AUWqVn59Q5+lJ2KeJVOZe7R6iN+evl
9OFPyAIgVLqWEt5sU1qY7lc7aB5CQ2NtpSdUqprpg0l5GyN8O8I=
-----END CERTIFICATE-----
"""

ANONYMOUS_KEY_PEM = b"""\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg3ysMnVAubO3QTQSb
vDTsXQTEsmzYDk3qE8ToMJfZy0ChRANCAASACTayg7Y4isAsvG8aPiW9fnaVt1p6
r1ZQFFrgGqFrPAM1Qniuha/8CkTf696TnM0l9JMB+uvgvn6zQI2VhQRW
-----END PRIVATE KEY-----
"""
