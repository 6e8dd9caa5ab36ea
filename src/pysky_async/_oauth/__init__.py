"""AT Protocol OAuth for services acting for their users (``bsky.oauth``)."""

from ._app import OAuthApp
from ._oauth import OAuth, OAuthLogin
from ._sessions import OAuthSession

__all__ = ["OAuth", "OAuthApp", "OAuthLogin", "OAuthSession"]
