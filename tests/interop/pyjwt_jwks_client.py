"""PyJWT's PyJWKClient verifying a tokend access token, given only the
jwks_uri read from tokend's discovery document.

Reads JSON on stdin: base, access. Prints the verified claims.
"""

import json
import sys

import jwt
import requests


def main():
    data = json.load(sys.stdin)
    meta = requests.get(data["base"] + "/.well-known/openid-configuration", timeout=10)
    meta.raise_for_status()
    meta = meta.json()
    header = jwt.get_unverified_header(data["access"])
    assert header["typ"] == "at+jwt", header
    client = jwt.PyJWKClient(meta["jwks_uri"])
    key = client.get_signing_key_from_jwt(data["access"])
    claims = jwt.decode(
        data["access"],
        key=key.key,
        algorithms=[header["alg"]],
        issuer=meta["issuer"],
        options={"require": ["exp", "iat", "sub", "jti", "iss"]},
    )
    print(json.dumps(claims))


if __name__ == "__main__":
    main()
