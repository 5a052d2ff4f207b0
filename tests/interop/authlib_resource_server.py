"""A resource server built with Authlib, against a running tokend.

Reads JSON on stdin: base (tokend's URL), client_id, client_secret, access,
refresh, and revoke_basic / revoke_post (access tokens to revoke). Finds the
endpoints through discovery, then for client_secret_basic and
client_secret_post: introspects, checks that Authlib's
IntrospectTokenValidator accepts the access token and refuses the refresh
token and garbage, and revokes a token. Exits non-zero on any failure.
"""

import json
import sys

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc6750 import InvalidTokenError
from authlib.oauth2.rfc7662 import IntrospectTokenValidator


def main():
    data = json.load(sys.stdin)
    meta = requests.get(data["base"] + "/.well-known/oauth-authorization-server", timeout=10)
    meta.raise_for_status()
    meta = meta.json()
    checked = []
    for method in ("client_secret_basic", "client_secret_post"):
        session = OAuth2Session(
            data["client_id"],
            data["client_secret"],
            token_endpoint_auth_method=method,
            revocation_endpoint_auth_method=method,
        )

        answer = session.introspect_token(meta["introspection_endpoint"], token=data["access"])
        answer.raise_for_status()
        body = answer.json()
        assert body["active"] is True, body
        assert body["token_type"] == "Bearer", body

        class Validator(IntrospectTokenValidator):
            def introspect_token(self, token_string):
                resp = session.introspect_token(
                    meta["introspection_endpoint"],
                    token=token_string,
                    token_type_hint="access_token",
                )
                resp.raise_for_status()
                return resp.json()

        validator = Validator()
        token = validator.authenticate_token(data["access"])
        validator.validate_token(token, [], None)
        for bad in (data["refresh"], "garbage"):
            token = validator.authenticate_token(bad)
            try:
                validator.validate_token(token, [], None)
            except InvalidTokenError:
                continue
            sys.exit(f"{method}: IntrospectTokenValidator accepted {bad[:12]}…")

        victim = data["revoke_basic" if method == "client_secret_basic" else "revoke_post"]
        answer = session.revoke_token(meta["revocation_endpoint"], token=victim)
        answer.raise_for_status()
        token = validator.authenticate_token(victim)
        assert token["active"] is False, token
        checked.append(method)
    print(json.dumps({"checked": checked}))


if __name__ == "__main__":
    main()
