"""Huawei Cloud credentials, as the official SDK uses them: AK/SK request signing, IAM tokens
that renew themselves, temporary AK/SK minted from a token, and agency (assume-role) tokens.

A credentials object is given to a Huawei factory (``credentials=``); the factory binds it to
its adapter (:meth:`HuaweiCredentials.bind` with a :class:`Binding`: the header a token travels
in, the region, the account's project ID) and gets the :class:`~pipestatus.auth.Auth` the
transport consults on every attempt. One credentials object may serve several adapters: what
it fetches (a token, temporary keys) is cached in it, per IAM endpoint, and shared.

* :class:`HuaweiAKSK`: every request signed with SDK-HMAC-SHA256 (:mod:`pipestatus.auth._sign`)
  once all its headers are final, afresh on every retry and redirect hop, with
  ``X-Project-Id`` (the credentials' project, else the adapter's) and ``X-Security-Token``
  for temporary keys; the canonical query is the query sent.
* :class:`HuaweiIAM`: a password token scoped to a project, renewed before it expires and
  once more after a 401 (margins in :mod:`pipestatus.auth._iam`).
* :meth:`HuaweiIAM.temporary_aksk`: temporary AK/SK and a security token minted from the
  token, renewed when the SDK's 40 minutes are left; :meth:`HuaweiIAM.assume`: an agency's token.

Secrets (SK, password, tokens, security tokens) are held only here: no ``repr`` shows them,
every bound auth hides them in what a vendor echoes, and no error carries them.
"""

from __future__ import annotations

from pipestatus.auth._aksk import (
    ENV_AK,
    ENV_PROJECT_ID,
    ENV_SECURITY_TOKEN,
    ENV_SK,
    AKSKSigner,
    Binding,
    HuaweiAKSK,
    HuaweiCredentials,
)
from pipestatus.auth._cache import keys_margin, token_margin
from pipestatus.auth._iam import GLOBAL_IAM, IAM_REGIONS, iam_url
from pipestatus.auth._tokens import HuaweiAgency, HuaweiIAM, HuaweiTemporaryAKSK, IAMTokenAuth

__all__ = [
    "ENV_AK",
    "ENV_PROJECT_ID",
    "ENV_SECURITY_TOKEN",
    "ENV_SK",
    "GLOBAL_IAM",
    "IAM_REGIONS",
    "AKSKSigner",
    "Binding",
    "HuaweiAKSK",
    "HuaweiAgency",
    "HuaweiCredentials",
    "HuaweiIAM",
    "HuaweiTemporaryAKSK",
    "IAMTokenAuth",
    "iam_url",
    "keys_margin",
    "token_margin",
]
