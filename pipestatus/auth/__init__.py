"""Credentials: header tokens, token providers and request signers, consulted by the transport
on every attempt (see :mod:`pipestatus.auth._base`)."""

from pipestatus.auth._base import Auth, HeaderToken, ProvidedToken, TokenProvider, token_auth

__all__ = ["Auth", "HeaderToken", "ProvidedToken", "TokenProvider", "token_auth"]
