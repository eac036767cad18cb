"""The credentials of a configuration's account: each ``auth = "..."`` scheme, its keys, and
how its secrets are read from the environment (they never live in the file).

* ``auth = "token"`` (the default): ``token_env`` names the variable holding a token;
* ``auth = "aksk"``: ``ak_env`` and ``sk_env`` (and ``security_token_env`` for temporary keys)
  name the variables holding an access key and secret key; every request is signed;
* ``auth = "iam"``: ``user``, ``domain`` and ``project`` name an IAM user, its account and the
  token's scope, and ``password_env`` the variable holding the password.

A vendor allows the schemes of its spec's ``auth_schemes``. Each keys class is structured by
the configuration's converter (:mod:`pipestatus.cli.convert`) and turns into a
:data:`Secret` with ``read(environ)``; a missing variable is a :class:`Problem` at its key,
and no message holds a value read from the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, TypeAlias

import attrs

from pipestatus.auth import HuaweiAKSK, HuaweiCredentials, HuaweiIAM
from pipestatus.cli.convert import EnvName, Problem

__all__ = ["SCHEMES", "AKSKKeys", "CredentialKeys", "IAMKeys", "Secret", "TokenKeys"]

#: What an account's credentials are once read from the environment: a token, or a
#: credentials object (AK/SK, an IAM user).
Secret: TypeAlias = str | HuaweiCredentials


def _read(environ: Mapping[str, str], name: str, key: str) -> str:
    """The value of the variable ``name`` (named by ``key``), or ``ConfigError``'s problem."""
    value = environ.get(name, "")
    if not value.strip():
        state = "is empty" if name in environ else "is not set"
        raise Problem(key, f"environment variable {name} {state}")
    return value.strip()


@attrs.frozen(kw_only=True)
class TokenKeys:
    """``auth = "token"``: a ready-made token, in the variable ``token_env``."""

    token_env: EnvName

    #: The key a refusal of these credentials is reported at.
    refused_key = "token_env"

    def read(self, environ: Mapping[str, str]) -> Secret:
        return _read(environ, self.token_env, "token_env")

    def refused(self) -> str:
        return f"the token in {self.token_env} was refused"


@attrs.frozen(kw_only=True)
class AKSKKeys:
    """``auth = "aksk"``: an access key and secret key (and a security token for temporary
    ones), in the variables these keys name; every request is signed."""

    ak_env: EnvName
    sk_env: EnvName
    security_token_env: EnvName | None = None

    refused_key = "sk_env"

    def read(self, environ: Mapping[str, str]) -> Secret:
        ak = _read(environ, self.ak_env, "ak_env")
        sk = _read(environ, self.sk_env, "sk_env")
        token = None
        if self.security_token_env is not None:
            token = _read(environ, self.security_token_env, "security_token_env")
        try:
            return HuaweiAKSK(ak, sk, security_token=token)
        except ValueError as exc:  # its message names the argument, never the value
            raise Problem("ak_env", f"the keys in {self.ak_env}/{self.sk_env}: {exc}") from None

    def refused(self) -> str:
        return f"the keys in {self.ak_env} and {self.sk_env} were refused"


@attrs.frozen(kw_only=True)
class IAMKeys:
    """``auth = "iam"``: an IAM user's password token, scoped to ``project``; the password is
    in the variable ``password_env``."""

    user: str
    domain: str
    password_env: EnvName
    project: str

    refused_key = "password_env"

    def read(self, environ: Mapping[str, str]) -> Secret:
        password = _read(environ, self.password_env, "password_env")
        try:
            return HuaweiIAM(self.user, password, self.domain, self.project)
        except ValueError as exc:
            raise Problem("user", str(exc)) from None

    def refused(self) -> str:
        return f"the password in {self.password_env} was refused"


CredentialKeys: TypeAlias = TokenKeys | AKSKKeys | IAMKeys

#: Each ``auth = "..."`` scheme and its keys (a vendor allows those of its ``auth_schemes``).
SCHEMES: Final[Mapping[str, type[CredentialKeys]]] = {
    "token": TokenKeys,
    "aksk": AKSKKeys,
    "iam": IAMKeys,
}
