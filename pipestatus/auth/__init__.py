"""Credentials: header tokens, token providers and request signers, consulted by the transport
on every attempt (see :mod:`pipestatus.auth._base`), and Huawei Cloud's AK/SK signing and IAM
tokens (see :mod:`pipestatus.auth.huawei`)."""

from pipestatus.auth._base import Auth, HeaderToken, ProvidedToken, TokenProvider, token_auth
from pipestatus.auth.huawei import (
    Binding,
    HuaweiAgency,
    HuaweiAKSK,
    HuaweiCredentials,
    HuaweiIAM,
    HuaweiTemporaryAKSK,
)

__all__ = [
    "Auth",
    "Binding",
    "HeaderToken",
    "HuaweiAKSK",
    "HuaweiAgency",
    "HuaweiCredentials",
    "HuaweiIAM",
    "HuaweiTemporaryAKSK",
    "ProvidedToken",
    "TokenProvider",
    "token_auth",
]
