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
and no message holds a value read from the environment, nor a variable's name that does not
look like one (:func:`named`: it may be a token pasted in its place).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, TypeAlias

import attrs

from pipestatus.auth import HuaweiAKSK, HuaweiCredentials, HuaweiIAM
from pipestatus.cli.convert import EnvName, Problem

__all__ = ["SCHEMES", "AKSKKeys", "CredentialKeys", "IAMKeys", "Secret", "TokenKeys", "named"]

#: What an account's credentials are once read from the environment: a token, or a
#: credentials object (AK/SK, an IAM user).
Secret: TypeAlias = str | HuaweiCredentials


#: What a variable's name looks like when a message may show it: upper-case words of letters
#: and digits joined by ``_`` (``HUAWEICLOUD_SDK_SK``), none longer than 16 characters.
_NAME_WORD: Final = re.compile(r"[A-Z][A-Z0-9]{0,15}|[0-9]{1,16}")


def named(name: str) -> str:
    """How a message shows the variable name ``name``: as it is when it looks like one, else
    hidden. A token pasted where a name belongs (``token_env = "pt_Zk3x..."``) is often a valid
    identifier, so being one is not enough: it must look like what people name variables."""
    words = name.split("_")
    if len(name) <= 64 and all(_NAME_WORD.fullmatch(word) for word in words if word):
        return name
    return "<not shown: it does not look like a variable's name; was a secret pasted there?>"


def _read(environ: Mapping[str, str], name: str, key: str) -> str:
    """The value of the variable ``name`` (named by ``key``), or ``ConfigError``'s problem."""
    value = environ.get(name, "")
    if not value.strip():
        state = "is empty" if name in environ else "is not set"
        raise Problem(key, f"environment variable {named(name)} {state}")
    return value.strip()


def _show(name: str | None) -> str:
    """A variable-name field in a ``repr``: as :func:`named` shows it."""
    return "None" if name is None else repr(named(name))


@attrs.frozen(kw_only=True)
class TokenKeys:
    """``auth = "token"``: a ready-made token, in the variable ``token_env``."""

    token_env: EnvName = attrs.field(repr=_show)

    #: The key a refusal of these credentials is reported at.
    refused_key = "token_env"

    def read(self, environ: Mapping[str, str]) -> Secret:
        return _read(environ, self.token_env, "token_env")

    def refused(self) -> str:
        return f"the token in {named(self.token_env)} was refused"


@attrs.frozen(kw_only=True)
class AKSKKeys:
    """``auth = "aksk"``: an access key and secret key (and a security token for temporary
    ones), in the variables these keys name; every request is signed."""

    ak_env: EnvName = attrs.field(repr=_show)
    sk_env: EnvName = attrs.field(repr=_show)
    security_token_env: EnvName | None = attrs.field(default=None, repr=_show)

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
            problem = f"the keys in {named(self.ak_env)}/{named(self.sk_env)}: {exc}"
        raise Problem("ak_env", problem)  # after the block: the keys' context stays behind

    def refused(self) -> str:
        return f"the keys in {named(self.ak_env)} and {named(self.sk_env)} were refused"


@attrs.frozen(kw_only=True)
class IAMKeys:
    """``auth = "iam"``: an IAM user's password token, scoped to ``project``; the password is
    in the variable ``password_env``."""

    user: str
    domain: str
    password_env: EnvName = attrs.field(repr=_show)
    project: str

    refused_key = "password_env"

    def read(self, environ: Mapping[str, str]) -> Secret:
        password = _read(environ, self.password_env, "password_env")
        try:
            return HuaweiIAM(self.user, password, self.domain, self.project)
        except ValueError as exc:
            problem = str(exc)
        raise Problem("user", problem)  # after the block: the password's context stays behind

    def refused(self) -> str:
        return f"the password in {named(self.password_env)} was refused"


CredentialKeys: TypeAlias = TokenKeys | AKSKKeys | IAMKeys

#: Each ``auth = "..."`` scheme and its keys (a vendor allows those of its ``auth_schemes``).
SCHEMES: Final[Mapping[str, type[CredentialKeys]]] = {
    "token": TokenKeys,
    "aksk": AKSKKeys,
    "iam": IAMKeys,
}
