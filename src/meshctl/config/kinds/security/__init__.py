"""security.istio.io: one module per kind (v1; v1beta1 is the same schema).

As in `networking`, each message is a `@message` class giving both the schema and the typed
view, with the rules of Istio's validating webhook on the message they constrain.
"""

from meshctl.config.kinds.security.authorization_policy import AuthorizationPolicy
from meshctl.config.kinds.security.peer_authentication import PeerAuthentication
from meshctl.config.kinds.security.request_authentication import RequestAuthentication

__all__ = ["AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication"]
